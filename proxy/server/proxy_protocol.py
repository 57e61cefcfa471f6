"""The PROXY protocol (v1 text and v2 binary): the real client of a connection a balancer relays.

A TCP balancer (HAProxy ``send-proxy-v2``, an AWS NLB, ...) opens its own
connection to the proxy, so the TCP peer is the balancer. With the PROXY
protocol it first writes one header naming the client, then relays the
client's bytes (a TLS ClientHello) untouched. The header is plain TCP, before
TLS, so it is read from the raw socket here, and exactly: not one byte past
it, because what follows belongs to the TLS handshake. v2 says its length;
v1 ends at CRLF and is peeked at (``MSG_PEEK``) so the CRLF is found without
consuming what follows.

Bounds: a v1 line is at most 107 bytes (the spec's maximum), a v2 header at
most ``16 + V2_MAX_PAYLOAD``; the caller puts a deadline on the whole read.
LOCAL (v2) and UNKNOWN (v1) headers, which balancers send on their own health
checks, and PROXY headers for non-IP families mean "keep the TCP peer".

Spec: https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct

__all__ = [
    "V1_MAX",
    "V1_SIGNATURE",
    "V2_MAX_PAYLOAD",
    "V2_SIGNATURE",
    "Client",
    "NothingSent",
    "ProxyHeaderError",
    "parse_v1",
    "parse_v2",
    "read_header",
    "sends_header",
    "starts_header",
    "v2_length",
]

Client = tuple[str, int]  # (address, port) of the real client; None where the TCP peer stays

V1_SIGNATURE = b"PROXY "
V1_MIN = len(b"PROXY UNKNOWN\r\n")  # 15: the shortest valid v1 line
V1_MAX = 107  # the spec's longest v1 line, CRLF included
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V2_FIXED = 16  # signature, version/command, family/transport, length
V2_MAX_PAYLOAD = 2048  # addresses (at most 216 bytes) and TLVs; larger is refused, never read
AMBIGUITY_WAIT = 0.05  # a client sent a prefix of a signature: wait this long for more (within the deadline)

_V2_INET = {0x1: (4, ipaddress.IPv4Address), 0x2: (16, ipaddress.IPv6Address)}


class ProxyHeaderError(ValueError):
    """The header is missing, malformed or too long: the connection is refused."""


class NothingSent(EOFError):
    """Closed before sending a byte: a port probe or a balancer's TCP health check, not worth a log line."""


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and len(text) <= 5) or int(text) > 65535:
        raise ProxyHeaderError("v1 header with an invalid port")
    return int(text)


def _normalised(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def parse_v1(line: bytes) -> Client | None:
    """``PROXY TCP4|TCP6 src dst sport dport\\r\\n`` -> (src, sport); ``PROXY UNKNOWN...`` -> None."""
    if len(line) > V1_MAX or not line.startswith(V1_SIGNATURE) or not line.endswith(b"\r\n"):
        raise ProxyHeaderError("malformed v1 header")
    try:
        text = line[:-2].decode("ascii")
    except UnicodeDecodeError:
        raise ProxyHeaderError("v1 header that is not ASCII") from None
    if "\r" in text or "\n" in text:
        raise ProxyHeaderError("malformed v1 header")
    parts = text.split(" ")
    if parts[1] == "UNKNOWN":
        return None
    if parts[1] not in ("TCP4", "TCP6") or len(parts) != 6:
        raise ProxyHeaderError("malformed v1 header")
    family = ipaddress.IPv4Address if parts[1] == "TCP4" else ipaddress.IPv6Address
    try:
        source, _destination = family(parts[2]), family(parts[3])
    except ValueError:
        raise ProxyHeaderError(f"v1 header with an invalid {parts[1]} address") from None
    port = _port(parts[4])
    _port(parts[5])
    return _normalised(source), port


def v2_length(fixed: bytes) -> int:
    """The payload length announced by a v2 header's first 16 bytes (checked before reading it)."""
    if len(fixed) != V2_FIXED or not fixed.startswith(V2_SIGNATURE):
        raise ProxyHeaderError("malformed v2 header")
    if fixed[12] >> 4 != 2:
        raise ProxyHeaderError("v2 header with an unknown version")
    if fixed[12] & 0x0F not in (0, 1):
        raise ProxyHeaderError("v2 header with an unknown command")
    (length,) = struct.unpack("!H", fixed[14:16])
    if length > V2_MAX_PAYLOAD:
        raise ProxyHeaderError(f"v2 header longer than {V2_FIXED + V2_MAX_PAYLOAD} bytes")
    return length


def parse_v2(header: bytes) -> Client | None:
    """A whole v2 header -> (src, sport); None for LOCAL, and for PROXY of an unspecified or UNIX family."""
    length = v2_length(header[:V2_FIXED])
    if len(header) != V2_FIXED + length:
        raise ProxyHeaderError("truncated v2 header")
    if header[12] & 0x0F == 0:
        return None  # LOCAL: the balancer's own connection (a health check)
    family, transport = header[13] >> 4, header[13] & 0x0F
    if family not in _V2_INET:
        if family in (0x0, 0x3):
            return None  # UNSPEC or UNIX: no IP to use, the TCP peer stays
        raise ProxyHeaderError("v2 header with an unknown address family")
    if transport != 0x1:
        raise ProxyHeaderError("v2 header for a transport other than TCP")
    size, kind = _V2_INET[family]
    if length < 2 * size + 4:
        raise ProxyHeaderError("truncated v2 header")
    payload = header[V2_FIXED:]
    source = kind(payload[:size])
    (port,) = struct.unpack("!H", payload[2 * size:2 * size + 2])
    return _normalised(source), port


def starts_header(prefix: bytes) -> bool | None:
    """Do these first bytes begin a PROXY header? None while too short to tell."""
    undecided = False
    for signature in (V1_SIGNATURE, V2_SIGNATURE):
        if prefix.startswith(signature):
            return True
        if signature.startswith(prefix):
            undecided = True
    return None if undecided else False


# ---------------------------------------------------------------------------- reading from a socket


async def readable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready = loop.create_future()
    loop.add_reader(sock.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_reader(sock.fileno())


async def _peek(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    """Up to ``size`` bytes that have arrived, left in the socket; at least one, b"" at EOF."""
    while True:
        try:
            return sock.recv(size, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            await readable(loop, sock)


async def _recv_exact(loop: asyncio.AbstractEventLoop, sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = await loop.sock_recv(sock, size - len(data))
        if not chunk:
            raise EOFError("closed inside the PROXY header")
        data += chunk
    return data


async def read_header(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> Client | None:
    """Consume exactly one v1 or v2 header from a trusted balancer; what follows stays in the socket.

    Raises :class:`ProxyHeaderError` (no header, malformed, too long) or
    :class:`EOFError` (:class:`NothingSent` when closed before a byte). The caller
    puts the deadline (``limits.header_timeout``) around it.
    """
    first = await _peek(loop, sock, 1)
    if not first:
        raise NothingSent("closed before sending anything")
    if first not in (b"P", b"\r"):
        raise ProxyHeaderError("no PROXY header from a trusted source")
    start = await _recv_exact(loop, sock, V1_MIN)  # every header is at least this long
    if start.startswith(V2_SIGNATURE[:V1_MIN]):
        fixed = start + await _recv_exact(loop, sock, V2_FIXED - V1_MIN)
        return parse_v2(fixed + await _recv_exact(loop, sock, v2_length(fixed)))
    if not start.startswith(V1_SIGNATURE):
        raise ProxyHeaderError("no PROXY header from a trusted source")
    line = start
    while not line.endswith(b"\r\n"):
        if b"\r\n" in line or len(line) >= V1_MAX:
            raise ProxyHeaderError(f"v1 header not ended by CRLF within {V1_MAX} bytes")
        ahead = await _peek(loop, sock, V1_MAX - len(line))
        if not ahead:
            raise EOFError("closed inside the PROXY header")
        end = (line + ahead).find(b"\r\n", len(line) - 1)
        line += await _recv_exact(loop, sock, end + 2 - len(line) if end >= 0 else len(ahead))
    return parse_v1(line)


async def sends_header(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bool:
    """Does an untrusted client open with a PROXY header? Only peeks: its bytes stay for TLS/HTTP.

    Raises :class:`NothingSent` when it closes first.
    """
    while True:
        prefix = await _peek(loop, sock, len(V2_SIGNATURE))
        if not prefix:
            raise NothingSent("closed before sending anything")
        verdict = starts_header(prefix)
        if verdict is not None:
            return verdict
        await asyncio.sleep(AMBIGUITY_WAIT)  # "P", "PR", "\r\n": more is on its way
