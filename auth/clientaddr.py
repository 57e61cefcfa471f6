"""Which address is the client: the TCP peer, or what a trusted front proxy says it forwarded.

An ``X-Forwarded-For`` header is written by whoever sends it, so it is
believed only when the TCP peer is one of ``trusted_proxies``, and then only
from the right: each trusted proxy appends the address it received from, so
the rightmost hop that is not itself a trusted proxy is the first address no
trusted party can have been fooled about. Everything left of it may be
forged by the client and is never used (nginx's ``real_ip_recursive``).

A malformed entry on the way (a name, ``unknown``, garbage) means the chain
cannot be trusted past that point; rather than guess, the peer is used. The
peer is a trusted proxy, so the worst outcome is that its clients share one
address for the throttle, never that a client picks its own address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from auth.access import Network, client_address

__all__ = ["MAX_HOPS", "forwarded_client", "hop_address", "in_networks"]

MAX_HOPS = 32  # more trusted hops than this is no real deployment: treated as malformed


def in_networks(address: str, networks: Iterable[Network]) -> bool:
    """True when ``address`` (an IP, IPv4-mapped IPv6 taken as IPv4) is in one of ``networks``."""
    ip = client_address(address)
    return ip is not None and any(ip.version == net.version and ip in net for net in networks)


def hop_address(entry: str) -> str | None:
    """One ``X-Forwarded-For`` entry as a normalised IP; None when it is not one.

    Accepted: ``192.0.2.1``, ``192.0.2.1:443``, ``2001:db8::1``, ``[2001:db8::1]``,
    ``[2001:db8::1]:443`` (some balancers append the port). Nothing else.
    """
    text = entry.strip(" \t")
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or (rest and not _is_port_suffix(rest)):
            return None
        text = host
    elif text.count(":") == 1:  # IPv4 with a port; a bare IPv6 has at least two colons
        text, _, port = text.partition(":")
        if not _is_port_suffix(":" + port):
            return None
    if not text or "%" in text:
        return None  # a zone index names a local interface: never a remote client
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return None
    ip = client_address(text)
    return str(ip) if ip is not None else None


def _is_port_suffix(text: str) -> bool:
    port = text[1:]
    return text.startswith(":") and port.isascii() and port.isdigit() and len(port) <= 5 and int(port) < 65536


def forwarded_client(peer: str, forwarded_for: list[str], trusted: tuple[Network, ...]) -> str:
    """The client address for the policy, the throttle and the access log.

    ``forwarded_for`` is every ``X-Forwarded-For`` header in order (repeated
    headers are one list, as RFC 9110 says). Walks from the right, skipping
    trusted proxies; the first untrusted hop is the client. When every hop is
    trusted, the leftmost is. When the peer is not trusted, there is no
    header, or an entry is malformed before the client is found: the peer.
    """
    if not trusted or not forwarded_for or not in_networks(peer, trusted):
        return peer
    entries = [e for header in forwarded_for for e in header.split(",")]
    address = peer
    for hops, entry in enumerate(reversed(entries), 1):
        found = hop_address(entry)
        if found is None or hops > MAX_HOPS:
            return peer
        address = found
        if not in_networks(address, trusted):
            return address
    return address
