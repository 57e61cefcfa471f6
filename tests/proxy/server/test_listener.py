"""The PROXY-protocol listener over real sockets: who is trusted, what is refused, what aiohttp sees.

``127.0.0.1`` plays the trusted balancer, ``127.0.0.2`` (a source address
on loopback) a client connecting directly. The app answers
``request.remote``, which is what the access log, the caps and the policy use.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
import trustme
from aiohttp import web

from proxy.config import Limits
from proxy.server.aiohttp_seams import GuardedSite
from proxy.server.proxy_protocol import V2_SIGNATURE

BALANCER = (ipaddress.ip_network("127.0.0.1/32"),)
GET = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
LISTENER_LOG = "proxy.server.listener"


def v2_tcp4(src: str, sport: int = 40000, command: int = 1) -> bytes:
    payload = bytes(ipaddress.IPv4Address(src).packed) + bytes(4) + struct.pack("!HH", sport, 443)
    return V2_SIGNATURE + bytes([0x20 | command, 0x11]) + struct.pack("!H", len(payload)) + payload


async def _remote(request: web.Request) -> web.Response:
    return web.Response(text=f"remote={request.remote}")


Start = Callable[..., Awaitable[GuardedSite]]


@pytest.fixture
async def listen() -> AsyncIterator[Start]:
    runners: list[web.AppRunner] = []

    async def start(tls: ssl.SSLContext | None = None, **limits: Any) -> GuardedSite:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", _remote)
        options = {"keepalive_timeout": 30.0}
        runner = web.AppRunner(app, **options)
        await runner.setup()
        runners.append(runner)
        site = GuardedSite(runner, "127.0.0.1", 0, limits=Limits(**{"header_timeout": 2.0, **limits}),
                           handler_options=options, ssl_context=tls, proxy_protocol=BALANCER)
        await site.start()
        return site

    yield start
    for runner in runners:
        await runner.cleanup()


async def _exchange(site: GuardedSite, data: bytes, source: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port, local_addr=(source, 0))
    answer = b""
    try:
        writer.write(data)
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            answer += chunk
    except ConnectionResetError:
        pass  # refused with our bytes unread: the kernel resets instead of closing
    finally:
        writer.close()
    return answer


def _refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == LISTENER_LOG and r.levelno >= logging.WARNING]


async def test_v2_header_from_the_balancer_is_the_client(listen: Start) -> None:
    site = await listen()
    answer = await _exchange(site, v2_tcp4("192.0.2.7") + GET)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"remote=192.0.2.7")


async def test_v1_header_from_the_balancer_is_the_client(listen: Start) -> None:
    site = await listen()
    answer = await _exchange(site, b"PROXY TCP6 2001:db8::7 ::1 4000 443\r\n" + GET)
    assert answer.endswith(b"remote=2001:db8::7")


async def test_local_and_unknown_keep_the_balancer_as_the_peer(listen: Start) -> None:
    site = await listen()
    assert (await _exchange(site, v2_tcp4("192.0.2.7", command=0) + GET)).endswith(b"remote=127.0.0.1")
    assert (await _exchange(site, b"PROXY UNKNOWN\r\n" + GET)).endswith(b"remote=127.0.0.1")


async def test_a_direct_client_without_a_header_is_served_as_itself(listen: Start) -> None:
    site = await listen()
    assert (await _exchange(site, GET, source="127.0.0.2")).endswith(b"remote=127.0.0.2")


@pytest.mark.parametrize(("data", "source", "words"), [
    (v2_tcp4("192.0.2.7") + GET, "127.0.0.2", "untrusted source"),
    (b"PROXY TCP4 192.0.2.7 127.0.0.1 1 2\r\n" + GET, "127.0.0.2", "untrusted source"),
    (GET, "127.0.0.1", "no PROXY header from a trusted source"),
    (b"PROXY TCP4 192.0.2.7 127.0.0.1 1\r\n" + GET, "127.0.0.1", "malformed v1"),
    (V2_SIGNATURE + b"\x21\x11\xff\xff" + GET, "127.0.0.1", "longer than"),
])
async def test_refused_connections_are_closed_with_one_log_line(
    listen: Start, caplog: pytest.LogCaptureFixture, data: bytes, source: str, words: str,
) -> None:
    site = await listen()
    caplog.set_level(logging.INFO)
    assert await _exchange(site, data, source=source) == b""  # closed, nothing answered
    refusals = _refusals(caplog)
    assert len(refusals) == 1, [r.getMessage() for r in refusals]
    assert words in refusals[0].getMessage() and source in refusals[0].getMessage()
    assert refusals[0].exc_info is None


async def test_a_stalled_header_is_closed_at_the_header_timeout(
    listen: Start, caplog: pytest.LogCaptureFixture,
) -> None:
    site = await listen(header_timeout=0.3)
    assert await _exchange(site, b"PROXY TCP4 192.0.2.7") == b""
    assert "nothing usable within 0.3s" in _refusals(caplog)[0].getMessage()


async def test_a_probe_that_sends_nothing_is_not_logged(listen: Start, caplog: pytest.LogCaptureFixture) -> None:
    site = await listen()
    for source in ("127.0.0.1", "127.0.0.2"):  # a balancer's TCP health check; a port scan
        reader, writer = await asyncio.open_connection("127.0.0.1", site.port, local_addr=(source, 0))
        writer.write_eof()
        assert await asyncio.wait_for(reader.read(), 10) == b""  # the proxy closed too
        writer.close()
    assert _refusals(caplog) == []


async def test_per_address_cap_counts_the_header_clients_not_the_balancer(listen: Start) -> None:
    site = await listen(max_connections_per_ip=1, header_timeout=30)
    held_reader, held = await asyncio.open_connection("127.0.0.1", site.port)
    held.write(v2_tcp4("192.0.2.7"))
    for _ in range(100):
        if site.guard.open == 1:
            break
        await asyncio.sleep(0.02)
    assert site.guard.per_ip == {"192.0.2.7": 1}
    refused = await _exchange(site, v2_tcp4("192.0.2.7") + GET)
    assert refused.startswith(b"HTTP/1.1 503") and b"from your address" in refused
    assert (await _exchange(site, v2_tcp4("192.0.2.8") + GET)).endswith(b"remote=192.0.2.8")
    held.close()
    for _ in range(100):
        if not site.guard.per_ip:
            break
        await asyncio.sleep(0.02)
    assert site.guard.per_ip == {} and site.guard.open == 0
    del held_reader


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def test_header_then_tls_then_http(listen: Start, ca: trustme.CA) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    site = await listen(tls=server_ctx)
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
    writer.write(v2_tcp4("192.0.2.7"))  # plain, before the ClientHello, as HAProxy sends it
    await writer.drain()
    await writer.start_tls(client_ctx, server_hostname="127.0.0.1")
    writer.write(GET)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"remote=192.0.2.7")


async def test_a_client_that_never_finishes_tls_is_closed(listen: Start, ca: trustme.CA) -> None:
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    site = await listen(tls=server_ctx, header_timeout=0.3)
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
    writer.write(v2_tcp4("192.0.2.7") + b"\x16\x03\x01")  # the header, then a ClientHello that never ends
    assert await asyncio.wait_for(reader.read(), 10) == b""
    writer.close()
    assert site.guard.open == 0


async def test_stop_closes_the_listener(listen: Start) -> None:
    site = await listen()
    _reader, pending = await asyncio.open_connection("127.0.0.1", site.port)  # still in the header read
    await site.stop()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", site.port)
    pending.close()
