"""The CLI names mixed hash costs and refuses guessable token keys (issue 11, items 6 and 7).

``user list`` and ``check-config`` report users whose cost or scheme differs
from the rest, with the command that fixes it; ``user passwd`` rehashes at the
configured cost (12). ``check-config`` judges the token key with the same
function ``serve`` uses, so it fails (exit 1) exactly when ``serve`` would.
"""

from __future__ import annotations

import base64
import io
import os
import sys
from pathlib import Path

import pytest

from auth.userfiles.atomic import read_lines
from auth.userfiles.hashing import DUMMY_HASHES, bcrypt_cost, check_password
from proxy.cli import build_parser
from proxy.cli.checks import check_config
from proxy.config import Config, parse_config
from proxy.http.runtime import load_token_key

D = DUMMY_HASHES
MARK_LINE = "mark: bcrypt cost 5, others 12; run `registry-auth-proxy user passwd mark` to rehash"


def run(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    args = build_parser().parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        code = int(args.func(args))
    finally:
        sys.stdin, sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """ann and bob at cost 12, mark at cost 5 (every password is DUMMY_PASSWORD)."""
    path = tmp_path / "users.htpasswd"
    path.write_text(f"ann:{D[12]}\nmark:{D[5]}\nbob:{D[12]}\n")
    (tmp_path / "users.groups").write_text("pusher: mark\n")
    return path


def test_user_list_keeps_stdout_a_list_and_names_the_odd_cost_on_stderr(mixed: Path) -> None:
    code, out, err = run(["user", "list", "--htpasswd", str(mixed)])
    assert (code, out) == (0, "ann\nmark\nbob\n")
    assert err == f"warning: {MARK_LINE}\n"


def test_user_passwd_rehashes_at_the_configured_cost_and_the_warning_goes(mixed: Path) -> None:
    code, out, err = run(["user", "passwd", "mark", "--htpasswd", str(mixed), "--password-stdin"], "newpwd\n")
    assert code == 0 and "updated password of user mark" in out and "(bcrypt cost 12)" in out
    assert err == ""
    line = next(x for x in read_lines(mixed) if x.startswith("mark:"))
    assert bcrypt_cost(line.split(":", 1)[1]) == 12 and check_password("newpwd", line.split(":", 1)[1])
    assert run(["user", "list", "--htpasswd", str(mixed)])[2] == ""


def test_user_add_at_an_odd_cost_warns_about_that_user_only(mixed: Path) -> None:
    code, _, err = run(["user", "add", "cheap", "--cost", "4", "--htpasswd", str(mixed), "--password-stdin"], "pw\n")
    assert code == 0
    assert err == "warning: cheap: bcrypt cost 4, others 12; run `registry-auth-proxy user passwd cheap` to rehash\n"


def _config(tmp_path: Path, key: bytes | None) -> Config:
    auth: dict[str, object] = {"htpasswd": "users.htpasswd", "groups": "users.groups"}
    if key is not None:
        (tmp_path / "token.key").write_bytes(key)
        auth["token"] = {"secret_file": "token.key"}
    data = {"backend": "http://127.0.0.1:9", "admin": {"listen": "off"}, "tls": "off", "auth": auth}
    return parse_config(data, tmp_path / "proxy.yml")


def test_check_config_reports_mixed_costs(mixed: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert check_config(_config(mixed.parent, base64.b64encode(os.urandom(48)))) == 0
    assert f"warning: {MARK_LINE}" in capsys.readouterr().out.splitlines()


KEYS = {
    "random base64": base64.b64encode(os.urandom(48)) + b"\n",
    "random raw": os.urandom(48),
    "the old k8s placeholder": b"REPLACE: head -c 48 /dev/urandom | base64\n",
    "empty": b"",
    "pattern": base64.b64encode(b"k" * 48),
    "sentence": b"this is the registry token key for prod\n",
}


@pytest.mark.parametrize("name", KEYS)
def test_check_config_refuses_exactly_the_keys_serve_refuses(tmp_path: Path, mixed: Path, name: str,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, KEYS[name])
    try:
        load_token_key(config)
        serve_refuses = False
    except ValueError:
        serve_refuses = True
    code = check_config(config)
    out = capsys.readouterr().out
    assert code == (1 if serve_refuses else 0), out
    assert serve_refuses == name.startswith(("the old", "empty", "pattern", "sentence"))
    if serve_refuses:
        assert f"error: {tmp_path / 'token.key'}: the token key " in out
        assert "config NOT OK: serve would refuse to start" in out
        assert "head -c 48 /dev/urandom | base64 > " in out


def test_check_config_fails_on_a_missing_key_file_as_serve_does(tmp_path: Path, mixed: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, b"unused")
    (tmp_path / "token.key").unlink()
    with pytest.raises(OSError):
        load_token_key(config)
    assert check_config(config) == 1
    assert "No such file or directory" in capsys.readouterr().out
