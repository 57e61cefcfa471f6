"""The keys that say where clients are and how hard they may push: ``public_url``, ``proxy_protocol``,
``trusted_proxies``, the per-address ``limits`` and the ``throttle`` tiers; and the Reader helpers behind
them (``integer``: whole numbers only; ``networks``: CIDR lists).
"""

from __future__ import annotations

import ipaddress
import math
from pathlib import Path
from typing import Any

import pytest

from proxy.config import ConfigError, parse_config
from proxy.config.model import Config, Limits, ProxyProtocol, Throttle
from proxy.config.reader import Reader


def parse(tmp_path: Path, data: dict[str, Any]) -> Config:
    return parse_config(data, tmp_path / "proxy.yml")


def mistake(tmp_path: Path, data: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse(tmp_path, data)
    message = str(info.value)
    assert "\n" not in message
    return message


def nets(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


def test_defaults(tmp_path: Path) -> None:
    config = parse(tmp_path, {})
    assert config.public_url is None
    assert config.proxy_protocol == ProxyProtocol(trusted=())
    assert config.trusted_proxies == ()
    assert config.limits == Limits()
    assert (config.limits.max_connections_per_ip, config.limits.send_timeout) == (256, 60.0)
    assert (config.limits.requests_per_second, config.limits.requests_burst) == (None, None)
    assert config.throttle == Throttle()
    assert (config.throttle.failures_per_ip, config.throttle.slow_after, config.throttle.max_delay) == (100, 20, 2.0)


# ------------------------------------------------------------------ public_url


@pytest.mark.parametrize(
    ("value", "normalised"),
    [
        ("https://registry.example.org", "https://registry.example.org"),
        ("https://registry.example.org/", "https://registry.example.org"),
        ("http://r.example:8080", "http://r.example:8080"),
        ("https://1.2.3.4", "https://1.2.3.4"),
        ("https://[::1]:5043", "https://[::1]:5043"),
        ("HTTPS://r.example", "https://r.example"),
        (None, None),
    ],
)
def test_public_url_accepted(tmp_path: Path, value: str | None, normalised: str | None) -> None:
    assert parse(tmp_path, {"public_url": value}).public_url == normalised


@pytest.mark.parametrize(
    "value",
    ["r.example", "ftp://r.example", "https://", "", 5, True, ["https://r.example"],
     "https://r.example/path", "https://r.example/v2/", "https://r.example?x=1", "https://r.example#f",
     "https://u:p@r.example", "https://u@r.example", "https://r.example:0", "https://r.example:99999",
     "https://r.example:abc", "https://r.example:", 'https://evil"x', "https://a b", "https://a,b",
     "https://r.example/ ", "https://r..example"],
)
def test_public_url_refused(tmp_path: Path, value: object) -> None:
    message = mistake(tmp_path, {"public_url": value})
    assert message.startswith(f"{tmp_path / 'proxy.yml'}: public_url: expected "), message


# ------------------------------------------------------------------ proxy_protocol, trusted_proxies


@pytest.mark.parametrize(
    ("value", "trusted"),
    [
        ({"trusted": ["10.0.0.0/8", "2001:db8::/32"]}, nets("10.0.0.0/8", "2001:db8::/32")),
        ({"trusted": "10.0.0.1"}, nets("10.0.0.1/32")),
        ("off", ()), (False, ()), (None, ()),
    ],
)
def test_proxy_protocol(tmp_path: Path, value: object, trusted: tuple[Any, ...]) -> None:
    assert parse(tmp_path, {"proxy_protocol": value}).proxy_protocol == ProxyProtocol(trusted=trusted)


@pytest.mark.parametrize(
    ("value", "key"),
    [
        ({}, "proxy_protocol.trusted"),  # on, but from whom? never "from anyone"
        ({"trusted": []}, "proxy_protocol.trusted"),
        ({"trusted": ["x"]}, "proxy_protocol.trusted"),
        ({"trusted": [10]}, "proxy_protocol.trusted"),
        ({"trusted": ["10.0.0.0/8"], "version": 2}, "proxy_protocol.version"),
        (True, "proxy_protocol"),
        ("on", "proxy_protocol"),
    ],
)
def test_proxy_protocol_mistakes(tmp_path: Path, value: object, key: str) -> None:
    assert f": {key}: expected " in mistake(tmp_path, {"proxy_protocol": value})


@pytest.mark.parametrize(
    ("value", "trusted"),
    [(["10.0.0.0/8", "::1"], nets("10.0.0.0/8", "::1/128")), ("192.0.2.7", nets("192.0.2.7/32")),
     ([], ()), ("off", ()), (None, ())],
)
def test_trusted_proxies(tmp_path: Path, value: object, trusted: tuple[Any, ...]) -> None:
    assert parse(tmp_path, {"trusted_proxies": value}).trusted_proxies == trusted


@pytest.mark.parametrize("value", [["nope"], True, "on", {"a": 1}, ["10.0.0.0/8", 1]])
def test_trusted_proxies_mistakes(tmp_path: Path, value: object) -> None:
    assert ": trusted_proxies: expected " in mistake(tmp_path, {"trusted_proxies": value})


# ------------------------------------------------------------------ limits and throttle


def test_limits_and_throttle_read(tmp_path: Path) -> None:
    config = parse(tmp_path, {
        "limits": {"max_connections_per_ip": 10, "send_timeout": 5, "requests_per_second": 2.5, "requests_burst": 20},
        "throttle": {"failures": 3, "failures_per_ip": 50, "slow_after": 5, "max_delay": 0.5},
    })
    assert (config.limits.max_connections_per_ip, config.limits.send_timeout) == (10, 5.0)
    assert (config.limits.requests_per_second, config.limits.requests_burst) == (2.5, 20)
    assert config.throttle == Throttle(failures=3, failures_per_ip=50, slow_after=5, max_delay=0.5)
    assert parse(tmp_path, {"limits": {"requests_per_second": "off", "requests_burst": None}}).limits == Limits()
    assert parse(tmp_path, {"throttle": {"max_delay": 0}}).throttle.max_delay == 0.0  # never slowed


WRONG: list[tuple[dict[str, Any], str, str]] = [  # (config, dotted key, text of the found value)
    ({"throttle": {"failures": 1.5}}, "throttle.failures", "1.5"),  # a whole number, never rounded
    ({"throttle": {"failures": 10.0}}, "throttle.failures", "10.0"),
    ({"throttle": {"failures": 0}}, "throttle.failures", "0"),
    ({"throttle": {"failures": True}}, "throttle.failures", "True"),
    ({"throttle": {"failures": "10"}}, "throttle.failures", "'10'"),
    ({"throttle": {"failures": 10**10}}, "throttle.failures", "10000000000"),
    ({"throttle": {"failures_per_ip": 0}}, "throttle.failures_per_ip", "0"),
    ({"throttle": {"failures_per_ip": 2.5}}, "throttle.failures_per_ip", "2.5"),
    ({"throttle": {"slow_after": True}}, "throttle.slow_after", "True"),
    ({"throttle": {"slow_after": 0}}, "throttle.slow_after", "0"),
    ({"throttle": {"max_delay": -1}}, "throttle.max_delay", "-1"),
    ({"throttle": {"max_delay": math.nan}}, "throttle.max_delay", "nan"),
    ({"throttle": {"lockout": 5}}, "throttle.lockout", "unknown key"),
    ({"limits": {"max_connections": 2.5}}, "limits.max_connections", "2.5"),
    ({"limits": {"max_connections_per_ip": 0}}, "limits.max_connections_per_ip", "0"),
    ({"limits": {"max_connections_per_ip": 1.0}}, "limits.max_connections_per_ip", "1.0"),
    ({"limits": {"send_timeout": 0}}, "limits.send_timeout", "0"),
    ({"limits": {"send_timeout": "60"}}, "limits.send_timeout", "'60'"),
    ({"limits": {"requests_per_second": 0.001}}, "limits.requests_per_second", "0.001"),
    ({"limits": {"requests_per_second": -1}}, "limits.requests_per_second", "-1"),
    ({"limits": {"requests_per_second": True}}, "limits.requests_per_second", "True"),
    ({"limits": {"requests_per_second": math.inf}}, "limits.requests_per_second", "inf"),
    ({"limits": {"requests_burst": 1.5}}, "limits.requests_burst", "1.5"),
    ({"limits": {"requests_burst": True}}, "limits.requests_burst", "True"),
    ({"limits": {"requests_burst": -3}}, "limits.requests_burst", "-3"),
    ({"auth": {"token": {"ttl": 60.5}}}, "auth.token.ttl", "60.5"),
    ({"public_urls": "https://r.example"}, "public_urls", "unknown key"),
]


@pytest.mark.parametrize(("data", "key", "found"), WRONG, ids=[f"{k}={f}" for _, k, f in WRONG])
def test_wrong_value_names_the_key(tmp_path: Path, data: dict[str, Any], key: str, found: str) -> None:
    message = mistake(tmp_path, data)
    assert message.startswith(f"{tmp_path / 'proxy.yml'}: {key}: expected "), message
    assert found in message, message


# ------------------------------------------------------------------ the Reader helpers


@pytest.mark.parametrize(("value", "result"), [(1, 1), (7, 7), (10**9, 10**9)])
def test_integer_accepts_whole_numbers(tmp_path: Path, value: int, result: int) -> None:
    assert Reader(tmp_path / "p.yml").integer({"k": value}, "k", "s.k", 5, 1) == result
    assert Reader(tmp_path / "p.yml").integer({}, "k", "s.k", 5, 1) == 5  # absent: the default


@pytest.mark.parametrize("value", [0, -1, 1.5, 2.0, True, False, "3", None, math.nan, 10**9 + 1, [1]])
def test_integer_refuses_the_rest(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        Reader(tmp_path / "p.yml").integer({"k": value}, "k", "s.k", 5, 1)
    assert ": s.k: expected a whole number >= 1, found " in str(info.value)


@pytest.mark.parametrize(
    ("value", "result"),
    [
        ("10.0.0.0/8", nets("10.0.0.0/8")),
        (["10.0.0.0/8", "2001:db8::/32"], nets("10.0.0.0/8", "2001:db8::/32")),
        (["192.0.2.7"], nets("192.0.2.7/32")),
        (["::1"], nets("::1/128")),
        (["0.0.0.0/0", "::/0"], nets("0.0.0.0/0", "::/0")),
    ],
)
def test_networks(tmp_path: Path, value: object, result: tuple[Any, ...]) -> None:
    assert Reader(tmp_path / "p.yml").networks(value, "x.from") == result


@pytest.mark.parametrize("value", [[], None, 10, True, {"a": "10.0.0.0/8"}, ["10.0.0.0/33"], ["garbage"], [10],
                                   [None], ["10.0.0.0/8", ""], ["10.0.0.0/8,192.168.0.0/16"], ["10.0.0.0 /8"]])
def test_networks_refused(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError) as info:
        Reader(tmp_path / "p.yml").networks(value, "x.from")
    assert ": x.from: expected " in str(info.value)
