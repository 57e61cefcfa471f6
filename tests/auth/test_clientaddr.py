"""X-Forwarded-For is believed only from trusted proxies, and only from the right."""

from __future__ import annotations

import ipaddress

import pytest

from auth.clientaddr import MAX_HOPS, forwarded_client, hop_address, in_networks

FRONTS = (ipaddress.ip_network("10.0.0.0/24"), ipaddress.ip_network("2001:db8:f::/48"))


@pytest.mark.parametrize(("entry", "expected"), [
    ("192.0.2.7", "192.0.2.7"),
    (" 192.0.2.7 ", "192.0.2.7"),
    ("192.0.2.7:4431", "192.0.2.7"),
    ("2001:db8::7", "2001:db8::7"),
    ("[2001:db8::7]", "2001:db8::7"),
    ("[2001:db8::7]:443", "2001:db8::7"),
    ("::ffff:192.0.2.7", "192.0.2.7"),
    ("2001:DB8:0::7", "2001:db8::7"),
])
def test_hop_addresses_are_normalised(entry: str, expected: str) -> None:
    assert hop_address(entry) == expected


@pytest.mark.parametrize("entry", [
    "", "unknown", "example.org", "192.0.2", "192.0.2.7:", "192.0.2.7:99999", "192.0.2.7:x",
    "[2001:db8::7", "[2001:db8::7]x", "[192.0.2.7", "fe80::1%eth0", "192.0.2.7/32", "_hidden",
])
def test_malformed_hops_are_refused(entry: str) -> None:
    assert hop_address(entry) is None


def test_in_networks_checks_the_family_and_ipv4_mapped_addresses() -> None:
    assert in_networks("10.0.0.9", FRONTS)
    assert in_networks("::ffff:10.0.0.9", FRONTS)
    assert in_networks("2001:db8:f::1", FRONTS)
    assert not in_networks("10.0.1.9", FRONTS)
    assert not in_networks("not an address", FRONTS)
    assert not in_networks("10.0.0.9", ())


def test_untrusted_peer_keeps_its_own_address_whatever_it_claims() -> None:
    assert forwarded_client("198.51.100.5", ["192.0.2.7"], FRONTS) == "198.51.100.5"


def test_no_trusted_proxies_configured_means_the_peer() -> None:
    assert forwarded_client("10.0.0.2", ["192.0.2.7"], ()) == "10.0.0.2"


def test_trusted_peer_without_a_header_is_the_client() -> None:
    assert forwarded_client("10.0.0.2", [], FRONTS) == "10.0.0.2"


def test_rightmost_untrusted_hop_wins_over_what_the_client_wrote_on_the_left() -> None:
    # the client wrote "1.1.1.1" itself; the front appended the address it really saw
    assert forwarded_client("10.0.0.2", ["1.1.1.1, 192.0.2.7"], FRONTS) == "192.0.2.7"


def test_trusted_hops_on_the_right_are_skipped() -> None:
    chain = ["203.0.113.9, 192.0.2.7, 10.0.0.3", "2001:db8:f::4"]  # two headers: one list, in order
    assert forwarded_client("10.0.0.2", chain, FRONTS) == "192.0.2.7"


def test_every_hop_trusted_gives_the_leftmost() -> None:
    assert forwarded_client("10.0.0.2", ["10.0.0.5, 10.0.0.3"], FRONTS) == "10.0.0.5"


@pytest.mark.parametrize("header", ["unknown", "192.0.2.7, garbage", "192.0.2.7,", " , 10.0.0.3", "a b c"])
def test_a_malformed_entry_before_the_client_means_the_peer(header: str) -> None:
    assert forwarded_client("10.0.0.2", [header], FRONTS) == "10.0.0.2"


def test_a_malformed_entry_left_of_the_client_is_never_read() -> None:
    assert forwarded_client("10.0.0.2", ["<script>, 192.0.2.7"], FRONTS) == "192.0.2.7"


def test_an_endless_chain_of_trusted_hops_means_the_peer() -> None:
    assert forwarded_client("10.0.0.2", [", ".join(["10.0.0.3"] * (MAX_HOPS + 1))], FRONTS) == "10.0.0.2"
    assert forwarded_client("10.0.0.2", [", ".join(["10.0.0.3"] * MAX_HOPS)], FRONTS) == "10.0.0.3"


def test_ipv4_mapped_peer_is_trusted_like_its_ipv4_form() -> None:
    assert forwarded_client("::ffff:10.0.0.2", ["192.0.2.7"], FRONTS) == "192.0.2.7"
