"""proxy.yml loading: defaults, one clear line per mistake, paths relative to the file."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from auth.access import Rule
from proxy.config import ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[3]  # tests/proxy/config/ -> the repository


def write(folder: Path, text: str, name: str = "proxy.yml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def tls_files(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "server.crt", folder / "server.key"
    cert.write_text("not parsed by the config loader\n")
    key.write_text("not parsed by the config loader\n")
    return cert, key


# ------------------------------------------------------------------ defaults


def test_empty_file_gives_every_default(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, ""))
    assert config.path == (tmp_path / "proxy.yml").resolve()
    assert (config.listen_host, config.listen_port) == ("0.0.0.0", 5043)
    assert config.listen == "0.0.0.0:5043"
    assert config.tls is None
    assert config.backend == "http://127.0.0.1:5000"
    assert config.auth.realm == "basic-realm"
    assert config.auth.htpasswd == (tmp_path / "users.htpasswd").resolve()
    assert config.auth.groups == (tmp_path / "users.groups").resolve()
    assert config.auth.challenge == "bearer"
    assert config.auth.cache_ttl == 60.0
    assert config.auth.token.ttl == 300
    assert config.auth.token.path == "/token"
    assert config.auth.token.secret_file is None
    assert config.auth.token.realm is None
    assert config.auth.token.service  # the host name, never empty
    assert config.access.pull == Rule(anyone=True)
    assert config.access.push == Rule.of_groups(["pusher"])
    assert config.access.delete == Rule.of_groups(["pusher"])
    assert config.access.catalog == Rule(anyone=True)
    assert (config.timeouts.connect, config.timeouts.read, config.timeouts.grace) == (10.0, 300.0, 30.0)
    assert config.log.access is True


def test_comment_only_file_is_defaults(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "# nothing set\n")).listen_port == 5043


def test_shipped_example_loads() -> None:
    config = load_config(ROOT / "proxy.yml")
    assert config.tls is not None
    assert config.tls.cert == ROOT / "certs-example" / "server.crt"
    assert config.access.push == Rule.of_groups(["pusher"])


def test_full_config_is_read(tmp_path: Path) -> None:
    tls_files(tmp_path)
    text = """
listen: 127.0.0.1:8443
tls: {cert: server.crt, key: server.key}
backend: https://registry.internal:5000/
auth:
  realm: my realm
  htpasswd: /etc/proxy/users
  groups: null
  challenge: basic
  cache_ttl: 0
  token: {secret_file: token.key, ttl: 60, service: reg.example, path: /auth/token,
          realm: https://reg.example/auth/token, issuer: me}
access: {pull: users, push: [a, b], delete: [], catalog: [admins]}
timeouts: {connect: 0.5, read: 20, grace: 0}
log: {access: false}
"""
    config = load_config(write(tmp_path, text))
    assert (config.listen_host, config.listen_port) == ("127.0.0.1", 8443)
    assert config.tls is not None and config.tls.key == tmp_path / "server.key"
    assert config.backend == "https://registry.internal:5000"
    assert config.auth.realm == "my realm"
    assert config.auth.htpasswd == Path("/etc/proxy/users")
    assert config.auth.groups is None
    assert config.auth.challenge == "basic"
    assert config.auth.cache_ttl == 0
    token = config.auth.token
    assert token.secret_file == tmp_path / "token.key"
    assert (token.ttl, token.service, token.path, token.realm, token.issuer) == (
        60, "reg.example", "/auth/token", "https://reg.example/auth/token", "me")
    assert config.access.pull == Rule(users=True)
    assert config.access.push == Rule.of_groups(["a", "b"])
    assert config.access.delete == Rule()
    assert config.access.catalog == Rule.of_groups(["admins"])
    assert (config.timeouts.connect, config.timeouts.read, config.timeouts.grace) == (0.5, 20.0, 0.0)
    assert config.log.access is False


# ------------------------------------------------------------------ wrong values

WRONG: list[tuple[dict[str, Any], str, str]] = [  # (config, dotted key, text of the found value)
    ({"listen": 5043}, "listen", "5043"),
    ({"listen": "5043"}, "listen", "'5043'"),
    ({"listen": "0.0.0.0:"}, "listen", "'0.0.0.0:'"),
    ({"listen": ":5043"}, "listen", "':5043'"),
    ({"listen": "0.0.0.0:70000"}, "listen", "'0.0.0.0:70000'"),
    ({"listen": "0.0.0.0:0"}, "listen", "'0.0.0.0:0'"),
    ({"listen": "0.0.0.0:http"}, "listen", "'0.0.0.0:http'"),
    ({"tls": True}, "tls", "True"),
    ({"tls": "on"}, "tls", "'on'"),
    ({"tls": {"cert": "server.crt"}}, "tls", "{'cert': 'server.crt'}"),
    ({"tls": {"cert": 5, "key": "server.key"}}, "tls.cert", "5"),
    ({"tls": {"cert": "server.crt", "key": ""}}, "tls.key", "''"),
    ({"backend": 5000}, "backend", "5000"),
    ({"backend": "127.0.0.1:5000"}, "backend", "'127.0.0.1:5000'"),
    ({"backend": "ftp://127.0.0.1:5000"}, "backend", "'ftp://127.0.0.1:5000'"),
    ({"backend": "http://"}, "backend", "'http://'"),
    ({"backend": "http://127.0.0.1:5000/v2"}, "backend", "'http://127.0.0.1:5000/v2'"),
    ({"backend": "http://127.0.0.1:5000/?x=1"}, "backend", "'http://127.0.0.1:5000/?x=1'"),
    ({"backend": "http://user:s3cret@127.0.0.1:5000"}, "backend", "credentials (hidden)"),
    ({"auth": "basic"}, "auth", "'basic'"),
    ({"auth": {"realm": ""}}, "auth.realm", "''"),
    ({"auth": {"realm": 7}}, "auth.realm", "7"),
    ({"auth": {"realm": 'say "hi"'}}, "auth.realm", "'say \"hi\"'"),
    ({"auth": {"realm": "back\\slash"}}, "auth.realm", "'back\\\\slash'"),
    ({"auth": {"htpasswd": 5}}, "auth.htpasswd", "5"),
    ({"auth": {"htpasswd": ""}}, "auth.htpasswd", "''"),
    ({"auth": {"groups": ["a"]}}, "auth.groups", "['a']"),
    ({"auth": {"challenge": "digest"}}, "auth.challenge", "'digest'"),
    ({"auth": {"challenge": "Bearer"}}, "auth.challenge", "'Bearer'"),
    ({"auth": {"cache_ttl": -1}}, "auth.cache_ttl", "-1"),
    ({"auth": {"cache_ttl": "60"}}, "auth.cache_ttl", "'60'"),
    ({"auth": {"cache_ttl": True}}, "auth.cache_ttl", "True"),
    ({"auth": {"token": "x"}}, "auth.token", "'x'"),
    ({"auth": {"token": {"ttl": 5}}}, "auth.token.ttl", "5"),
    ({"auth": {"token": {"ttl": "300"}}}, "auth.token.ttl", "'300'"),
    ({"auth": {"token": {"ttl": False}}}, "auth.token.ttl", "False"),
    ({"auth": {"token": {"service": ""}}}, "auth.token.service", "''"),
    ({"auth": {"token": {"service": 1}}}, "auth.token.service", "1"),
    ({"auth": {"token": {"path": "token"}}}, "auth.token.path", "'token'"),
    ({"auth": {"token": {"path": "/v2/token"}}}, "auth.token.path", "'/v2/token'"),
    ({"auth": {"token": {"path": 3}}}, "auth.token.path", "3"),
    ({"auth": {"token": {"realm": "reg.example/token"}}}, "auth.token.realm", "'reg.example/token'"),
    ({"auth": {"token": {"realm": 1}}}, "auth.token.realm", "1"),
    ({"auth": {"token": {"secret_file": 3}}}, "auth.token.secret_file", "3"),
    ({"auth": {"token": {"issuer": ""}}}, "auth.token.issuer", "''"),
    ({"access": ["pull"]}, "access", "['pull']"),
    ({"access": {"pull": "everyone"}}, "access.pull", "'everyone'"),
    ({"access": {"push": "pusher"}}, "access.push", "'pusher'"),
    ({"access": {"delete": [1]}}, "access.delete", "[1]"),
    ({"access": {"delete": [""]}}, "access.delete", "['']"),
    ({"access": {"catalog": ["a:b"]}}, "access.catalog", "['a:b']"),
    ({"access": {"push": None}}, "access.push", "None"),
    ({"timeouts": 5}, "timeouts", "5"),
    ({"timeouts": {"connect": 0}}, "timeouts.connect", "0"),
    ({"timeouts": {"read": "300"}}, "timeouts.read", "'300'"),
    ({"timeouts": {"read": 0.01}}, "timeouts.read", "0.01"),
    ({"timeouts": {"grace": -1}}, "timeouts.grace", "-1"),
    ({"timeouts": {"connect": True}}, "timeouts.connect", "True"),
    ({"log": 1}, "log", "1"),
    ({"log": {"access": "yes"}}, "log.access", "'yes'"),
    ({"log": {"access": 1}}, "log.access", "1"),
]


@pytest.mark.parametrize(("data", "key", "found"), WRONG, ids=[f"{k}={f}" for _, k, f in WRONG])
def test_wrong_value_names_file_key_expectation_and_value(
    tmp_path: Path, data: dict[str, Any], key: str, found: str
) -> None:
    tls_files(tmp_path)
    path = tmp_path / "proxy.yml"
    with pytest.raises(ConfigError) as info:
        parse_config(data, path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: expected "), message
    assert found in message, message
    assert "\n" not in message


# Values that are of the right type but make no sense: each must be a ConfigError
# (one line for the operator), not a ValueError/OverflowError traceback, and not
# silently accepted to fail on the first request.
ODD: list[tuple[dict[str, Any], str]] = [
    ({"auth": {"token": {"ttl": math.nan}}}, "auth.token.ttl"),
    ({"auth": {"token": {"ttl": math.inf}}}, "auth.token.ttl"),
    ({"auth": {"cache_ttl": math.nan}}, "auth.cache_ttl"),
    ({"timeouts": {"read": math.nan}}, "timeouts.read"),
    ({"timeouts": {"connect": math.nan}}, "timeouts.connect"),
    ({"listen": "0.0.0.0:\u00b2"}, "listen"),  # str.isdigit() is true for superscript two
    ({"backend": "http://127.0.0.1:notaport"}, "backend"),
    ({"backend": "http://127.0.0.1:99999"}, "backend"),
    ({"auth": {"htpasswd": "users\x00.htpasswd"}}, "auth.htpasswd"),
    ({"auth": {"htpasswd": None}}, "auth.htpasswd"),  # `htpasswd:` with no value: AssertionError today
]


@pytest.mark.parametrize(("data", "key"), ODD, ids=[repr(d) for d, _ in ODD])
def test_nonsense_values_are_config_errors(tmp_path: Path, data: dict[str, Any], key: str) -> None:
    path = tmp_path / "proxy.yml"
    with pytest.raises(ConfigError) as info:
        parse_config(data, path)
    assert str(info.value).startswith(f"{path}: {key}: expected "), str(info.value)


def test_wrong_value_from_yaml_file_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "timeouts:\n  connect: soon\n")
    with pytest.raises(ConfigError, match=r"proxy\.yml: timeouts\.connect: expected a number >= 0\.1, found 'soon'"):
        load_config(path)


def test_top_level_not_a_mapping(tmp_path: Path) -> None:
    path = write(tmp_path, "- listen\n- backend\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(path) in str(info.value)
    assert "expected a mapping" in str(info.value)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yml"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: cannot read")


# ------------------------------------------------------------------ unknown keys

UNKNOWN: list[tuple[str, str]] = [
    ("acess:\n  pull: anyone\n", "acess"),
    ("listen: 0.0.0.0:5043\nbackends: http://x:1\n", "backends"),
    ("auth:\n  tokn:\n    ttl: 60\n", "auth.tokn"),
    ("auth:\n  htpassword: users\n", "auth.htpassword"),
    ("auth:\n  token:\n    tll: 60\n", "auth.token.tll"),
    ("access:\n  pul: anyone\n", "access.pul"),
    ("access:\n  write: [pusher]\n", "access.write"),
    ("timeouts:\n  idle: 5\n", "timeouts.idle"),
    ("log:\n  level: debug\n", "log.level"),
    ("tls:\n  cert: server.crt\n  key: server.key\n  ca: ca.crt\n", "tls.ca"),
    ("1: one\n", "1"),
]


@pytest.mark.parametrize(("text", "key"), UNKNOWN, ids=[k for _, k in UNKNOWN])
def test_unknown_key_is_an_error_naming_it(tmp_path: Path, text: str, key: str) -> None:
    tls_files(tmp_path)
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: expected one of "), message
    assert "unknown key" in message


# ------------------------------------------------------------------ paths


def test_relative_paths_resolve_against_the_config_folder_not_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    conf_dir = tmp_path / "etc" / "proxy"
    conf_dir.mkdir(parents=True)
    tls_files(conf_dir)
    path = write(conf_dir, """
tls: {cert: server.crt, key: ./server.key}
auth:
  htpasswd: users.htpasswd
  groups: ../shared/users.groups
  token: {secret_file: keys/token.key}
""")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(path)
    assert config.tls is not None
    assert config.tls.cert == conf_dir / "server.crt"
    assert config.tls.key == conf_dir / "server.key"
    assert config.auth.htpasswd == conf_dir / "users.htpasswd"
    assert config.auth.groups == tmp_path / "etc" / "shared" / "users.groups"
    assert config.auth.token.secret_file == conf_dir / "keys" / "token.key"


def test_relative_config_path_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "conf", "auth: {htpasswd: h}\n")
    monkeypatch.chdir(tmp_path)
    config = load_config("conf/proxy.yml")
    assert config.path == tmp_path / "conf" / "proxy.yml"
    assert config.auth.htpasswd == tmp_path / "conf" / "h"


def test_absolute_paths_are_kept(tmp_path: Path) -> None:
    config = load_config(write(tmp_path / "a", f"auth: {{htpasswd: {tmp_path}/b/users}}\n"))
    assert config.auth.htpasswd == tmp_path / "b" / "users"


# ------------------------------------------------------------------ tls


@pytest.mark.parametrize("text", ["tls: off\n", "tls: false\n", "tls: 'off'\n", "tls:\n", "listen: 0.0.0.0:80\n"])
def test_tls_off_or_omitted_is_none(tmp_path: Path, text: str) -> None:
    assert load_config(write(tmp_path, text)).tls is None


@pytest.mark.parametrize("missing", ["cert", "key"])
def test_tls_with_missing_file_is_an_error(tmp_path: Path, missing: str) -> None:
    tls_files(tmp_path)
    (tmp_path / f"server.{'crt' if missing == 'cert' else 'key'}").unlink()
    path = write(tmp_path, "tls:\n  cert: server.crt\n  key: server.key\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: tls.{missing}: expected an existing file"), message
    assert str(tmp_path / "server.") in message


def test_tls_pointing_at_a_directory_is_an_error(tmp_path: Path) -> None:
    tls_files(tmp_path)
    (tmp_path / "dir.crt").mkdir()
    with pytest.raises(ConfigError, match=r"tls\.cert: expected an existing file"):
        load_config(write(tmp_path, "tls: {cert: dir.crt, key: server.key}\n"))


# ------------------------------------------------------------------ YAML syntax


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("listen: 0.0.0.0:5043\nauth:\n  realm: [unclosed\n  challenge: basic\n", None),
        ("listen: 0.0.0.0:5043\nbackend: http://x:1\n\tauth: 1\n", 3),
        ("a: 1\nb: 2\nc: 'unterminated\n", None),
        ("auth:\n  realm: x\n realm2: y\n", 3),
    ],
)
def test_invalid_yaml_is_one_line_with_a_line_number(tmp_path: Path, text: str, line: int | None) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: line ")
    assert "not valid YAML" in message
    number = int(message.split(" line ", 1)[1].split()[0])
    assert 1 <= number <= text.count("\n") + 1
    if line is not None:
        assert number == line, message


# ------------------------------------------------------------------ listen and backend


@pytest.mark.parametrize(
    ("value", "host", "port", "shown"),
    [
        ("0.0.0.0:5043", "0.0.0.0", 5043, "0.0.0.0:5043"),
        ("127.0.0.1:1", "127.0.0.1", 1, "127.0.0.1:1"),
        ("localhost:65535", "localhost", 65535, "localhost:65535"),
        ("[::]:5043", "::", 5043, "[::]:5043"),
        ("[::1]:443", "::1", 443, "[::1]:443"),
    ],
)
def test_listen(tmp_path: Path, value: str, host: str, port: int, shown: str) -> None:
    config = parse_config({"listen": value}, tmp_path / "proxy.yml")
    assert (config.listen_host, config.listen_port, config.listen) == (host, port, shown)


def test_listen_ipv6_from_yaml(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'listen: "[::]:5043"\n'))
    assert (config.listen_host, config.listen_port) == ("::", 5043)


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("http://127.0.0.1:5000", "http://127.0.0.1:5000"),
        ("http://127.0.0.1:5000/", "http://127.0.0.1:5000"),
        ("https://registry.internal", "https://registry.internal"),
        ("http://[::1]:5000", "http://[::1]:5000"),
    ],
)
def test_backend_accepted(tmp_path: Path, value: str, normalised: str) -> None:
    assert parse_config({"backend": value}, tmp_path / "p.yml").backend == normalised


@pytest.mark.parametrize(
    "value",
    ["http://127.0.0.1:5000/v2", "http://127.0.0.1:5000/v2/", "http://h/prefix", "http://u:p@127.0.0.1:5000",
     "http://user@h:5000/", "http://h:5000#frag"],
)
def test_backend_with_path_or_credentials_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(ConfigError, match=r": backend: expected http\(s\)://host:port with no"):
        parse_config({"backend": value}, tmp_path / "p.yml")


# ------------------------------------------------------------------ maintenance_file


@pytest.mark.parametrize("text", ["", "maintenance_file: null\n", "maintenance_file:\n"])
def test_maintenance_file_null_or_absent_is_beside_the_config_never_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    conf_dir = tmp_path / "etc" / "proxy"
    path = write(conf_dir, text)
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(path)
    assert config.maintenance_file.is_absolute()
    assert config.maintenance_file == conf_dir / "maintenance"
    same = parse_config({"maintenance_file": None}, conf_dir / "proxy.yml")  # the parser alone, too
    assert same.maintenance_file == conf_dir / "maintenance"


def test_maintenance_file_relative_value_is_beside_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = parse_config({"maintenance_file": "run/flag"}, tmp_path / "conf" / "proxy.yml")
    assert config.maintenance_file == tmp_path / "conf" / "run" / "flag"
