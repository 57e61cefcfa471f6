"""Rules with networks: who (``admits``) and from where (``reachable_from``) are both needed.

An empty ``networks`` means from anywhere. Otherwise the client address must
be in one of them; an address that is unknown or not an IP is outside every
network, and an IPv4-mapped IPv6 peer (a dual-stack listener) is its IPv4.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv6Address

import pytest

from auth.access import NOBODY, Access, Action, Identity, RepositoryRule, Rule, Verdict, client_address, decide


def nets(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


PUSHER = Identity("mark", frozenset({"pusher"}))
READER = Identity("reader")
INSIDE, OUTSIDE = "10.1.2.3", "192.0.2.1"

# (networks, client address, reachable)
TABLE: list[tuple[tuple[str, ...], str, bool]] = [
    ((), INSIDE, True),  # no networks: from anywhere ...
    ((), "", True),  # ... even when the address is unknown
    ((), "garbage", True),
    (("10.0.0.0/8",), INSIDE, True),
    (("10.0.0.0/8",), "10.255.255.255", True),
    (("10.0.0.0/8",), "11.0.0.0", False),
    (("10.0.0.0/8",), OUTSIDE, False),
    (("10.0.0.0/8",), "", False),  # unknown: outside every network
    (("10.0.0.0/8",), "garbage", False),
    (("10.0.0.0/8",), "10.1.2.3:5000", False),  # an address with a port is not an address
    (("10.0.0.0/8",), " 10.1.2.3", False),
    (("10.0.0.0/8",), "[10.1.2.3]", False),
    (("10.0.0.0/8",), "010.001.002.003", False),  # ambiguous octal-looking text is not read at all
    (("10.0.0.0/8",), "::ffff:10.1.2.3", True),  # IPv4-mapped IPv6: the IPv4 it carries
    (("10.0.0.0/8",), "::FFFF:10.1.2.3", True),
    (("10.0.0.0/8",), "::ffff:a01:203", True),  # the same mapped address written in hex
    (("10.0.0.0/8",), "::ffff:11.1.2.3", False),
    (("10.0.0.0/8",), "[::ffff:10.1.2.3]", False),
    (("10.0.0.0/8",), "::a01:203", False),  # IPv4-compatible (not mapped) is an IPv6 address
    (("127.0.0.0/8",), "::1", False),  # IPv6 loopback is not IPv4 loopback
    (("::1/128",), "::1", True),
    (("::1/128",), "127.0.0.1", False),
    (("2001:db8::/32",), "2001:db8::1", True),
    (("2001:db8::/32",), "2001:DB8:0:0:0:0:0:ffff", True),
    (("2001:db8::/32",), "2001:db9::1", False),
    (("2001:db8::/32",), "2001:db8::1%eth0", True),  # a zone index does not change the address
    (("2001:db8::/32",), INSIDE, False),
    (("2001:db8::/32",), "", False),
    (("10.0.0.0/8", "2001:db8::/32"), INSIDE, True),
    (("10.0.0.0/8", "2001:db8::/32"), "2001:db8::7", True),
    (("10.0.0.0/8", "2001:db8::/32"), OUTSIDE, False),
    (("192.0.2.7/32",), "192.0.2.7", True),
    (("192.0.2.7/32",), "192.0.2.8", False),
    (("0.0.0.0/0",), OUTSIDE, True),
    (("0.0.0.0/0",), "::ffff:192.0.2.1", True),
    (("0.0.0.0/0",), "2001:db8::1", False),  # all of IPv4 is not all of IPv6
    (("0.0.0.0/0",), "", False),
    (("::/0",), "2001:db8::1", True),
    (("::/0",), OUTSIDE, False),
]


@pytest.mark.parametrize(("cidrs", "address", "reachable"), TABLE, ids=[f"{c}-{a!r}" for c, a, _ in TABLE])
def test_reachable_from(cidrs: tuple[str, ...], address: str, reachable: bool) -> None:
    rule = Rule(anyone=True, networks=nets(*cidrs))
    assert rule.reachable_from(address) is reachable
    assert rule.allows(None, address) is reachable  # anyone: the network is the whole answer
    assert rule.admits(None)  # the identity half never looks at the address


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("10.1.2.3", IPv4Address("10.1.2.3")),
        ("::ffff:10.1.2.3", IPv4Address("10.1.2.3")),
        ("2001:db8::1", IPv6Address("2001:db8::1")),
        ("fe80::1%eth0", IPv6Address("fe80::1")),
        ("", None),
        ("garbage", None),
        ("10.1.2.3:80", None),
        ("999.1.1.1", None),
    ],
)
def test_client_address(text: str, address: IPv4Address | IPv6Address | None) -> None:
    assert client_address(text) == address


@pytest.mark.parametrize(
    ("rule", "who", "address", "allows"),
    [
        (Rule.of_groups(["pusher"]), PUSHER, OUTSIDE, True),  # no networks: the identity decides
        (Rule.of_groups(["pusher"]), READER, INSIDE, False),
        (Rule(groups=frozenset({"pusher"}), networks=nets("10.0.0.0/8")), PUSHER, INSIDE, True),
        (Rule(groups=frozenset({"pusher"}), networks=nets("10.0.0.0/8")), PUSHER, OUTSIDE, False),
        (Rule(groups=frozenset({"pusher"}), networks=nets("10.0.0.0/8")), READER, INSIDE, False),
        (Rule(users=True, networks=nets("10.0.0.0/8")), None, INSIDE, False),
        (Rule(users=True, networks=nets("10.0.0.0/8")), READER, INSIDE, True),
        (Rule(networks=nets("10.0.0.0/8")), PUSHER, INSIDE, False),  # nobody, from anywhere
    ],
)
def test_allows_needs_both_halves(rule: Rule, who: Identity | None, address: str, allows: bool) -> None:
    assert rule.allows(who, address) is allows
    assert rule.allows(who, address) is (rule.admits(who) and rule.reachable_from(address))


@pytest.mark.parametrize(
    ("who", "address", "verdict"),
    [
        (PUSHER, INSIDE, Verdict.ALLOW),
        (PUSHER, "::ffff:10.9.9.9", Verdict.ALLOW),
        (READER, INSIDE, Verdict.FORBIDDEN),
        (None, INSIDE, Verdict.UNAUTHENTICATED),
        (PUSHER, OUTSIDE, Verdict.WRONG_NETWORK),  # the right user from the wrong place
        (READER, OUTSIDE, Verdict.WRONG_NETWORK),
        (None, OUTSIDE, Verdict.WRONG_NETWORK),  # logging in could not help: not a 401
        (None, "", Verdict.WRONG_NETWORK),
        (PUSHER, "garbage", Verdict.WRONG_NETWORK),
    ],
)
def test_decide_reports_the_wrong_network_before_the_identity(
    who: Identity | None, address: str, verdict: Verdict
) -> None:
    access = Access(push=Rule(groups=frozenset({"pusher"}), networks=nets("10.0.0.0/8")))
    assert decide(access, who, Action.PUSH, "team/app", address) is verdict
    assert decide(access, None, Action.PULL, "team/app", OUTSIDE) is Verdict.ALLOW  # pull has no networks
    assert access.allowed(who, Action.PUSH, "team/app", address) is (verdict is Verdict.ALLOW)


def test_repository_and_catalog_rules_carry_their_own_networks() -> None:
    access = Access(
        catalog=Rule(anyone=True, networks=nets("10.0.0.0/8")),
        repositories=(RepositoryRule("internal/**", pull=Rule(anyone=True, networks=nets("10.0.0.0/8"))),),
    )
    for name in ("internal/app", "internal"):  # the namespace itself too
        assert decide(access, None, Action.PULL, name, OUTSIDE) is Verdict.WRONG_NETWORK
        assert decide(access, None, Action.PULL, name, INSIDE) is Verdict.ALLOW
    assert decide(access, None, Action.PULL, "public/app", OUTSIDE) is Verdict.ALLOW
    assert decide(access, PUSHER, Action.PULL, None, OUTSIDE) is Verdict.WRONG_NETWORK
    assert decide(access, None, Action.PULL, None, INSIDE) is Verdict.ALLOW


def test_grant_narrows_by_network_too() -> None:
    access = Access(push=Rule(groups=frozenset({"pusher"}), networks=nets("10.0.0.0/8", "2001:db8::/32")))
    wanted = [Action.PULL, Action.PUSH]
    assert access.grant(PUSHER, "a", wanted, INSIDE) == {Action.PULL, Action.PUSH}
    assert access.grant(PUSHER, "a", wanted, "2001:db8::5") == {Action.PULL, Action.PUSH}
    assert access.grant(PUSHER, "a", wanted, OUTSIDE) == {Action.PULL}
    assert access.grant(PUSHER, "a", wanted, "") == {Action.PULL}


def test_describe_names_the_networks() -> None:
    ten, doc6 = nets("10.0.0.0/8", "2001:db8::/32")
    assert Rule(anyone=True, networks=(ten,)).describe() == "anyone from 10.0.0.0/8"
    assert Rule(users=True, networks=(ten, doc6)).describe() == "users from 10.0.0.0/8,2001:db8::/32"
    assert Rule(groups=frozenset({"b", "a"}), networks=(doc6,)).describe() == "[a, b] from 2001:db8::/32"
    assert Rule(networks=(ten,)).describe() == "nobody from 10.0.0.0/8"
    assert Rule(users=True).describe() == "users"  # no networks: nothing added


ANYONE, USERS, NOBODY_RULE = Rule(anyone=True), Rule(users=True), NOBODY
A, AB, C = Rule.of_groups(["a"]), Rule.of_groups(["a", "b"]), Rule.of_groups(["c"])


@pytest.mark.parametrize(
    ("rule", "other", "covers"),
    [
        (ANYONE, ANYONE, True), (ANYONE, USERS, True), (ANYONE, A, True), (ANYONE, NOBODY_RULE, True),
        (USERS, ANYONE, False), (USERS, USERS, True), (USERS, AB, True), (USERS, NOBODY_RULE, True),
        (AB, A, True), (AB, AB, True), (A, AB, False), (AB, C, False), (A, USERS, False), (A, ANYONE, False),
        (A, NOBODY_RULE, True), (NOBODY_RULE, NOBODY_RULE, True), (NOBODY_RULE, A, False),
        (Rule(users=True, networks=nets("10.0.0.0/8")), USERS, True),  # networks are ignored
        (A, Rule(groups=frozenset({"a"}), networks=nets("10.0.0.0/8")), True),
    ],
)
def test_covers(rule: Rule, other: Rule, covers: bool) -> None:
    assert rule.covers(other) is covers
