"""The client's ``Host`` is judged before any URL is built from it; ``public_url`` replaces it entirely.

Realms, upload ``Location`` headers and error texts are built from the
public origin: a Host carrying quotes, commas, spaces or slashes would
inject parameters into a challenge or point a ``Location`` elsewhere.
"""

from __future__ import annotations

import pytest

from auth.access import Access
from auth.decision import Origin, Policy
from auth.errors import ProxyError
from auth.hosts import public_origin, valid_host

GOOD = [
    "registry.example", "registry.example:5043", "localhost", "a", "A.B", "my-host_1.internal:65535",
    "1.2.3.4", "1.2.3.4:443", "[::1]", "[::1]:5043", "[2001:db8::1]:443", "[::ffff:1.2.3.4]", "a:1",
    "xn--bcher-kva.example", "a" * 253,
]
BAD = [
    "",
    'evil"x', 'evil"x:1', 'a",scope="registry:catalog:*', "a,b", "a b", "a\tb", "a/b", "a\\b", "a@b", "user:pw@a",
    "a?b", "a#b", "a;b", "a\r\nX-Injected: 1", "a\n", " a", "a:80 ", "a\x00b", "a%2fb", "ä.example",
    "[::1", "::1", "[::1]x", "[::1]]", "[[::1]]", "[]", "[:]", "[nothex]", "[1.2.3.4]", "[::1]:", "[::1]:0",
    "a:", ":80", "a:0", "a:65536", "a:99999", "a:-1", "a:+80", "a:80:80", "a:\uff18\uff10",
    "a..b", ".a", "a.", "-a", "a-", "_a", "a_", "a" * 254,
]


def _refusal(hosts: list[str]) -> ProxyError:
    try:
        public_origin("https", hosts, "", None)
    except ProxyError as err:
        return err
    raise AssertionError("no refusal")


NO_HOST = _refusal([])


@pytest.mark.parametrize("host", GOOD)
def test_plain_hosts_are_valid(host: str) -> None:
    assert valid_host(host)


@pytest.mark.parametrize("host", BAD, ids=[repr(h)[:40] for h in BAD])
def test_anything_else_is_not_a_host(host: str) -> None:
    assert not valid_host(host)


@pytest.mark.parametrize("host", GOOD)
def test_public_origin_is_the_checked_host(host: str) -> None:
    assert public_origin("https", [host], "192.0.2.1", None) == Origin("https", host, "192.0.2.1")


@pytest.mark.parametrize("hosts", [[h] for h in BAD] + [[], ["a", "a"], ["a", "b"], ["a", 'evil"x']],
                         ids=[repr(h)[:40] for h in BAD] + ["none", "twice-same", "two", "good-then-bad"])
def test_a_bad_or_missing_or_repeated_host_is_400(hosts: list[str]) -> None:
    with pytest.raises(ProxyError) as info:
        public_origin("https", hosts, "192.0.2.1", None)
    err = info.value
    assert (err.status, err.code) == (400, "UNSUPPORTED")
    assert err.headers == {}
    assert err.message == NO_HOST.message  # one fixed text: what the client sent is never echoed


@pytest.mark.parametrize("hosts", [[], ["a", "b"], ['evil"x'], ["attacker.example"]])
def test_public_url_overrides_the_host_entirely(hosts: list[str]) -> None:
    """With ``public_url`` set the client's Host is neither used nor judged: it cannot matter."""
    origin = public_origin("http", hosts, "10.1.2.3", "https://registry.example.org:8443")
    assert origin == Origin("https", "registry.example.org:8443", "10.1.2.3")


def test_public_url_without_a_port() -> None:
    assert public_origin("http", ["x"], "", "https://registry.example.org") == Origin(
        "https", "registry.example.org", "")


def test_the_realm_is_built_from_the_public_origin() -> None:
    policy = Policy(access=Access(), mode="bearer", basic_realm="r", service="svc", token_path="/token")
    origin = public_origin("http", ["attacker.example"], "10.1.2.3", "https://registry.example.org")
    assert policy.challenge(origin) == 'Bearer realm="https://registry.example.org/token",service="svc"'
