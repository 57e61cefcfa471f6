"""PROXY protocol v1/v2: parsing, and reading exactly one header from a real TCP socket.

The header is read before TLS starts, so "exactly" matters: the bytes after
it (a ClientHello) must still be in the socket afterwards. Every read test
checks that by reading what is left.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator

import pytest

from proxy.server.proxy_protocol import (
    V1_MAX,
    V2_MAX_PAYLOAD,
    V2_SIGNATURE,
    NothingSent,
    ProxyHeaderError,
    parse_v1,
    parse_v2,
    read_header,
    sends_header,
    starts_header,
)

HELLO = b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03"  # the start of a TLS ClientHello


def v2(command: int = 1, family: int = 0x11, payload: bytes = b"", length: int | None = None) -> bytes:
    """A v2 header: ``family`` is (address family << 4 | transport)."""
    size = len(payload) if length is None else length
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack("!H", size) + payload


def inet4(src: str, dst: str, sport: int, dport: int) -> bytes:
    return socket.inet_pton(socket.AF_INET, src) + socket.inet_pton(socket.AF_INET, dst) + struct.pack(
        "!HH", sport, dport)


def inet6(src: str, dst: str, sport: int, dport: int) -> bytes:
    return socket.inet_pton(socket.AF_INET6, src) + socket.inet_pton(socket.AF_INET6, dst) + struct.pack(
        "!HH", sport, dport)


# ------------------------------------------------------------------------------- v1


@pytest.mark.parametrize(("line", "client"), [
    (b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n", ("192.0.2.7", 56324)),
    (b"PROXY TCP6 2001:db8::7 2001:db8::1 4000 443\r\n", ("2001:db8::7", 4000)),
    (b"PROXY TCP6 ::ffff:192.0.2.7 ::1 4000 443\r\n", ("192.0.2.7", 4000)),
    (b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n", ("255.255.255.255", 65535)),
    (b"PROXY UNKNOWN\r\n", None),
    (b"PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n", None),
])
def test_v1_valid(line: bytes, client: tuple[str, int] | None) -> None:
    assert parse_v1(line) == client


@pytest.mark.parametrize("line", [
    b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\n",  # LF only
    b"PROXY TCP4 192.0.2.7 198.51.100.1 56324\r\n",  # a field missing
    b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443 x\r\n",  # one too many
    b"PROXY TCP4 2001:db8::7 198.51.100.1 56324 443\r\n",  # family mismatch
    b"PROXY TCP6 192.0.2.7 2001:db8::1 56324 443\r\n",
    b"PROXY TCP4 192.0.2.300 198.51.100.1 56324 443\r\n",
    b"PROXY TCP4 192.0.2.7 198.51.100.1 65536 443\r\n",
    b"PROXY TCP4 192.0.2.7 198.51.100.1 -1 443\r\n",
    b"PROXY TCP4 192.0.2.7 198.51.100.1 \xd9\xa1 443\r\n",  # not ASCII
    b"PROXY TCP4  192.0.2.7 198.51.100.1 56324 443\r\n",  # two spaces
    b"PROXY UDP4 192.0.2.7 198.51.100.1 56324 443\r\n",
    b"proxy TCP4 192.0.2.7 198.51.100.1 56324 443\r\n",
    b"PROXY TCP4 192.0.2.7\r198.51.100.1 56324 443\r\n",
    b"PROXY UNKNOWN " + b"x" * V1_MAX + b"\r\n",  # longer than the spec allows
])
def test_v1_malformed(line: bytes) -> None:
    with pytest.raises(ProxyHeaderError):
        parse_v1(line)


# ------------------------------------------------------------------------------- v2


def test_v2_tcp4() -> None:
    assert parse_v2(v2(payload=inet4("192.0.2.7", "198.51.100.1", 56324, 443))) == ("192.0.2.7", 56324)


def test_v2_tcp6_and_ipv4_mapped() -> None:
    assert parse_v2(v2(family=0x21, payload=inet6("2001:db8::7", "::1", 4000, 443))) == ("2001:db8::7", 4000)
    assert parse_v2(v2(family=0x21, payload=inet6("::ffff:192.0.2.7", "::1", 9, 443))) == ("192.0.2.7", 9)


def test_v2_tlvs_after_the_addresses_are_skipped() -> None:
    tlv = b"\x04" + struct.pack("!H", 5) + b"abcde"  # PP2_TYPE_NOOP
    assert parse_v2(v2(payload=inet4("192.0.2.7", "198.51.100.1", 1, 2) + tlv)) == ("192.0.2.7", 1)


def test_v2_local_keeps_the_peer_even_with_addresses() -> None:
    assert parse_v2(v2(command=0, family=0x00)) is None
    assert parse_v2(v2(command=0, payload=inet4("192.0.2.7", "198.51.100.1", 1, 2))) is None


def test_v2_unspec_and_unix_keep_the_peer() -> None:
    assert parse_v2(v2(family=0x00)) is None
    assert parse_v2(v2(family=0x31, payload=b"\x00" * 216)) is None


@pytest.mark.parametrize(("header", "why"), [
    (v2(payload=inet4("192.0.2.7", "198.51.100.1", 1, 2))[:-1], "truncated"),
    (v2(payload=inet4("192.0.2.7", "198.51.100.1", 1, 2)[:8]), "truncated"),  # length says 8: too short for TCP4
    (v2(family=0x21, payload=inet4("192.0.2.7", "198.51.100.1", 1, 2)), "truncated"),  # TCP6 in 12 bytes
    (v2(length=V2_MAX_PAYLOAD + 1), "longer"),
    (v2(length=65535), "longer"),
    (b"\r\n\r\n\x00\r\nQUIT\r" + v2()[12:], "malformed"),  # wrong signature
    (v2()[:12] + b"\x11\x11\x00\x00", "version"),  # version 1 in a v2 header
    (v2(command=2), "command"),
    (v2(family=0x12, payload=inet4("192.0.2.7", "198.51.100.1", 1, 2)), "transport"),  # UDP
    (v2(family=0x41, payload=b"\x00" * 12), "family"),
])
def test_v2_malformed(header: bytes, why: str) -> None:
    with pytest.raises(ProxyHeaderError, match=why):
        parse_v2(header)


@pytest.mark.parametrize(("prefix", "verdict"), [
    (b"P", None), (b"PROX", None), (b"PROXY ", True), (b"PROXY TCP4", True),
    (b"\r\n\r\n", None), (V2_SIGNATURE, True), (V2_SIGNATURE[:11] + b"X", False),
    (b"PUT ", False), (b"POST", False), (HELLO, False), (b"GET / HTTP/1.1", False),
])
def test_starts_header(prefix: bytes, verdict: bool | None) -> None:
    assert starts_header(prefix) is verdict


# ------------------------------------------------------------------------------- over a real socket


@pytest.fixture
async def pair() -> AsyncIterator[tuple[socket.socket, socket.socket]]:
    """(server side, client side) of a real loopback TCP connection; the server side non-blocking."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    server.setblocking(False)
    yield server, client
    server.close()
    client.close()


async def _read(server: socket.socket, client: socket.socket, *chunks: bytes, pause: float = 0.02):  # type: ignore[no-untyped-def]
    """Send ``chunks`` with pauses (a header split across segments) while the header is read."""

    async def send() -> None:
        for chunk in chunks:
            client.sendall(chunk)
            await asyncio.sleep(pause)

    sender = asyncio.create_task(send())
    try:
        return await asyncio.wait_for(read_header(asyncio.get_running_loop(), server), 5)
    finally:
        await sender


def _rest(server: socket.socket) -> bytes:
    server.setblocking(True)
    server.settimeout(2)
    return server.recv(65536)


V1 = b"PROXY TCP4 192.0.2.7 198.51.100.1 56324 443\r\n"
V2 = v2(payload=inet4("192.0.2.7", "198.51.100.1", 56324, 443))


@pytest.mark.parametrize("chunks", [
    (V1 + HELLO,), (V1, HELLO), (V1[:3], V1[3:20], V1[20:-1], V1[-1:] + HELLO), (V1[:-1], V1[-1:], HELLO),
])
async def test_v1_is_read_exactly(pair: tuple[socket.socket, socket.socket], chunks: tuple[bytes, ...]) -> None:
    server, client = pair
    assert await _read(server, client, *chunks) == ("192.0.2.7", 56324)
    assert _rest(server) == HELLO


@pytest.mark.parametrize("chunks", [(V2 + HELLO,), (V2[:5], V2[5:17], V2[17:], HELLO), (V2[:16], V2[16:] + HELLO)])
async def test_v2_is_read_exactly(pair: tuple[socket.socket, socket.socket], chunks: tuple[bytes, ...]) -> None:
    server, client = pair
    assert await _read(server, client, *chunks) == ("192.0.2.7", 56324)
    assert _rest(server) == HELLO


async def test_unknown_and_local_are_read_and_keep_the_peer(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    assert await _read(server, client, b"PROXY UNKNOWN\r\n", v2(command=0, family=0x00), HELLO) is None
    assert await asyncio.wait_for(read_header(asyncio.get_running_loop(), server), 5) is None
    assert _rest(server) == HELLO


@pytest.mark.parametrize(("data", "why"), [
    (HELLO, "no PROXY header"),
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", "no PROXY header"),
    (b"PROXY TCP4 192.0.2.7 " + b"1" * 200, "not ended by CRLF within 107"),
    (b"PROXY X\r\n" + HELLO, "CRLF"),
    (v2(length=60000) + b"\x00" * 100, "longer than"),
    (b"\r\n\r\n\x00\r\nQUIT\r" + b"\x00" * 10, "no PROXY header"),
])
async def test_refusals(pair: tuple[socket.socket, socket.socket], data: bytes, why: str) -> None:
    server, client = pair
    with pytest.raises(ProxyHeaderError, match=why):
        await _read(server, client, data)


async def test_closed_before_anything(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    client.shutdown(socket.SHUT_WR)
    with pytest.raises(NothingSent):
        await _read(server, client)


async def test_closed_inside_the_header(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    client.sendall(V2[:20])
    client.shutdown(socket.SHUT_WR)
    with pytest.raises(EOFError) as caught:
        await _read(server, client)
    assert not isinstance(caught.value, NothingSent)


async def test_a_stalled_header_is_left_to_the_callers_deadline(pair: tuple[socket.socket, socket.socket]) -> None:
    server, client = pair
    client.sendall(V1[:20])
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(read_header(asyncio.get_running_loop(), server), 0.3)


@pytest.mark.parametrize(("chunks", "verdict"), [
    ((HELLO,), False), ((b"GET / HTTP/1.1\r\n",), False), ((b"P", b"UT / HTTP/1.1\r\n"), False),
    ((V1,), True), ((b"PR", b"OXY "), True), ((V2,), True), ((b"\r\n", b"\r\n\x00\r\nQUIT\n"), True),
])
async def test_sends_header_only_peeks(
    pair: tuple[socket.socket, socket.socket], chunks: tuple[bytes, ...], verdict: bool,
) -> None:
    server, client = pair

    async def send() -> None:
        for chunk in chunks:
            client.sendall(chunk)
            await asyncio.sleep(0.1)

    sender = asyncio.create_task(send())
    assert await asyncio.wait_for(sends_header(asyncio.get_running_loop(), server), 5) is verdict
    await sender
    assert _rest(server) == b"".join(chunks)  # nothing was consumed
