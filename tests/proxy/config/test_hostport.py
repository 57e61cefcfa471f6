"""``host:port``: the one parser and formatter shared by ``listen``, ``admin.listen`` and the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import ConfigError, connect_host, format_host_port, parse_config, parse_host_port


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("0.0.0.0:5043", "0.0.0.0", 5043),
        ("127.0.0.1:1", "127.0.0.1", 1),
        ("localhost:65535", "localhost", 65535),
        ("registry.example:443", "registry.example", 443),
        ("[::1]:80", "::1", 80),
        ("[::]:5043", "::", 5043),
        ("[fe80::1%eth0]:9102", "fe80::1%eth0", 9102),
        ("::1:80", "::1", 80),  # unbracketed IPv6: the last ':' is the port, as it always was
        (":::5043", "::", 5043),
    ],
)
def test_parse_host_port_accepts(text: str, host: str, port: int) -> None:
    assert parse_host_port(text) == (host, port)


@pytest.mark.parametrize(
    "text",
    [
        "0.0.0.0:0",
        "0.0.0.0:65536",
        "0.0.0.0:70000",
        "0.0.0.0:x",
        "0.0.0.0:http",
        "0.0.0.0:",
        "0.0.0.0:-1",
        "0.0.0.0:+80",
        "0.0.0.0: 80",
        "0.0.0.0:\u00b2",  # str.isdigit() is true for superscript two
        "0.0.0.0:\u0665",  # ARABIC-INDIC DIGIT FIVE: a digit, not ASCII
        ":5043",
        "[]:5043",
        "5043",
        "",
        "[::1:80",
        "::1]:80",
        "[::1]]:80",
        "[[::1]:80",
    ],
)
def test_parse_host_port_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_host_port(text)


@pytest.mark.parametrize("value", [None, 5043, 5043.0, ["0.0.0.0:5043"], b"0.0.0.0:5043", True])
def test_parse_host_port_refuses_non_strings(value: object) -> None:
    with pytest.raises(ValueError):
        parse_host_port(value)


@pytest.mark.parametrize(
    ("host", "port", "text"),
    [
        ("0.0.0.0", 5043, "0.0.0.0:5043"),
        ("localhost", 80, "localhost:80"),
        ("::1", 80, "[::1]:80"),
        ("::", 5043, "[::]:5043"),
    ],
)
def test_format_host_port_round_trips(host: str, port: int, text: str) -> None:
    assert format_host_port(host, port) == text
    assert parse_host_port(text) == (host, port)


@pytest.mark.parametrize(
    ("host", "reached"),
    [
        ("0.0.0.0", "127.0.0.1"),
        ("::", "127.0.0.1"),
        ("", "127.0.0.1"),
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "::1"),
        ("10.1.2.3", "10.1.2.3"),
        ("registry.example", "registry.example"),
    ],
)
def test_connect_host_reaches_wildcards_on_loopback(host: str, reached: str) -> None:
    assert connect_host(host) == reached


# ------------------------------------------------------------------ in the config: errors name the key


@pytest.mark.parametrize("value", ["0.0.0.0:0", "0.0.0.0:65536", "0.0.0.0:x", "[::1:80", "::1]:80", "5043", 5043])
@pytest.mark.parametrize(("key", "data"), [
    ("listen", lambda v: {"listen": v}),
    ("admin.listen", lambda v: {"admin": {"listen": v}}),
])
def test_config_errors_name_the_key(tmp_path: Path, key: str, data, value: object) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "proxy.yml"
    with pytest.raises(ConfigError) as info:
        parse_config(data(value), path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: expected host:port"), message
    assert repr(value) in message
    assert "\n" not in message


def test_config_accepts_what_the_parser_accepts(tmp_path: Path) -> None:
    config = parse_config({"listen": "[::1]:8443", "admin": {"listen": "[::1]:9102"}}, tmp_path / "proxy.yml")
    assert (config.listen_host, config.listen_port, config.listen) == ("::1", 8443, "[::1]:8443")
    assert config.admin.listen == "[::1]:9102"
    legacy = parse_config({"listen": "::1:8443"}, tmp_path / "proxy.yml")
    assert (legacy.listen_host, legacy.listen_port) == ("::1", 8443)
