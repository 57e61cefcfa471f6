"""The server seams in-process: connection caps, request-head timer, JSON parser refusals that echo nothing.

A real listening socket on loopback with :class:`GuardedSite` and a tiny
app, driven by raw asyncio streams, so each limit is seen exactly as a
client sees it. Timeouts are fractions of a second; every bound is generous.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
import trustme
from aiohttp import web

from auth.access import Network
from proxy.config import Limits
from proxy.server.aiohttp_seams import GuardedSite

HEAD_TIMEOUT = 0.4


@dataclass
class Listener:
    site: GuardedSite
    runner: web.AppRunner

    async def connect(self, source: str = "127.0.0.1") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.site.port, local_addr=(source, 0))


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("sleep", "0")))
    body = await request.read()
    return web.Response(text=f"ok {len(body)}")


@pytest.fixture
async def listen() -> AsyncIterator[Callable[..., Awaitable[Listener]]]:
    runners: list[web.AppRunner] = []

    async def start(trusted_proxies: tuple[Network, ...] = (), tls: ssl.SSLContext | None = None,
                    **limits: float) -> Listener:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", _slow)
        options = {"keepalive_timeout": 30.0}
        runner = web.AppRunner(app, **options)
        await runner.setup()
        runners.append(runner)
        merged = {"header_timeout": HEAD_TIMEOUT, **limits}
        site = GuardedSite(runner, "127.0.0.1", 0, limits=Limits(**merged), handler_options=options,  # type: ignore[arg-type]
                           ssl_context=tls, trusted_proxies=trusted_proxies)
        await site.start()
        return Listener(site, runner)

    yield start
    for runner in runners:
        await runner.cleanup()


async def _answer(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    return await asyncio.wait_for(reader.read(), timeout)  # until the server closes


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def _error(answer: bytes) -> dict[str, object]:
    head, _, body = answer.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower()
    assert head.lower().count(b"docker-distribution-api-version: registry/2.0") == 1
    return json.loads(body)["errors"][0]


async def test_trickled_head_gets_408_and_close(listen: Callable[..., Awaitable[Listener]]) -> None:
    server = await listen()
    reader, writer = await server.connect()
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")
    first = b""
    for _ in range(30):  # keeps sending, but never ends the head, until the server answers
        try:
            first = await asyncio.wait_for(reader.read(65536), HEAD_TIMEOUT / 3)
            break
        except TimeoutError:
            writer.write(b"X-Slow: a\r\n")
    answer = first + await _answer(reader)
    assert _status(answer) == 408
    assert _error(answer)["code"] == "UNSUPPORTED"
    writer.close()


async def test_idle_new_connection_gets_408(listen: Callable[..., Awaitable[Listener]]) -> None:
    server = await listen()
    reader, writer = await server.connect()
    assert _status(await _answer(reader)) == 408
    writer.close()


async def test_kept_alive_connection_gets_a_fresh_timer_for_each_head(
    listen: Callable[..., Awaitable[Listener]],
) -> None:
    server = await listen()
    reader, writer = await server.connect()
    for _ in range(3):  # idle longer than the head timeout between requests: the keep-alive timer's business
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        line = await asyncio.wait_for(reader.readuntil(b"ok 0"), 5)
        assert line.startswith(b"HTTP/1.1 200")
        await asyncio.sleep(HEAD_TIMEOUT * 1.5)
    writer.write(b"GET / HTTP/1.1\r\n")  # the next head starts and stalls: its own timer cuts it off
    answer = await _answer(reader)
    assert _status(answer) == 408
    writer.close()


async def test_slow_handler_and_slow_body_are_not_cut_by_the_head_timer(
    listen: Callable[..., Awaitable[Listener]],
) -> None:
    server = await listen()
    reader, writer = await server.connect()
    writer.write(b"POST /?sleep=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
    await asyncio.sleep(HEAD_TIMEOUT * 1.5)
    writer.write(b"cd")
    line = await asyncio.wait_for(reader.readuntil(b"ok 4"), 5)
    assert line.startswith(b"HTTP/1.1 200")
    writer.close()


async def test_connections_over_the_cap_get_503_and_the_held_ones_keep_working(
    listen: Callable[..., Awaitable[Listener]],
) -> None:
    server = await listen(max_connections=2, header_timeout=30)
    held = [await server.connect() for _ in range(2)]
    await asyncio.sleep(0.1)
    assert server.site.guard.open == 2
    for _ in range(3):
        reader, writer = await server.connect()
        answer = await _answer(reader)
        assert _status(answer) == 503
        assert b"connection: close" in answer.lower() and b"retry-after: 1" in answer.lower()
        writer.close()
    assert server.site.guard.refused == 3
    reader, writer = held[0]
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await asyncio.wait_for(reader.readuntil(b"ok 0"), 5)).startswith(b"HTTP/1.1 200")
    for _, w in held:
        w.close()
    for _ in range(50):
        if server.site.guard.open == 0:
            break
        await asyncio.sleep(0.05)
    assert server.site.guard.open == 0


@pytest.mark.parametrize(("request_line", "status"), [
    (b"delete / HTTP/1.1", 405),
    (b"G\x01T / HTTP/1.1", 405),
    (b"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2", 400),
    (b"GET / HTTP/1.1\r\nTransfer-Encoding: xchunked", 400),
])
async def test_parser_refusals_are_registry_json(
    listen: Callable[..., Awaitable[Listener]], request_line: bytes, status: int,
) -> None:
    server = await listen()
    reader, writer = await server.connect()
    writer.write(request_line + b"\r\nHost: x\r\n\r\n")
    answer = await _answer(reader)
    assert _status(answer) == status
    error = _error(answer)
    assert error["code"] == "UNSUPPORTED"
    if status == 405:
        assert b"\r\nallow: get, head, post, put, patch, delete\r\n" in answer.lower()
    writer.close()


async def test_pipelined_request_behind_a_slow_one_is_not_cut_by_the_head_timer(
    listen: Callable[..., Awaitable[Listener]],
) -> None:
    """The second head arrives while the first request is handled; its body comes later, slowly."""
    server = await listen()
    reader, writer = await server.connect()
    writer.write(b"GET /?sleep=0.6 HTTP/1.1\r\nHost: x\r\n\r\n"
                 b"POST /?sleep=0.6 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nab")
    first = await asyncio.wait_for(reader.readuntil(b"ok 0"), 5)
    assert first.startswith(b"HTTP/1.1 200")
    await asyncio.sleep(HEAD_TIMEOUT * 1.5)  # longer than a head may take: but this is a body
    writer.write(b"cd")
    second = await asyncio.wait_for(reader.readuntil(b"ok 4"), 5)
    assert second.lstrip().startswith(b"HTTP/1.1 200")
    writer.close()


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(250):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached")


async def test_connections_over_the_per_address_cap_get_503_and_other_addresses_are_served(
    listen: Callable[..., Awaitable[Listener]],
) -> None:
    server = await listen(max_connections_per_ip=2, header_timeout=30)
    held = [await server.connect("127.0.0.2") for _ in range(2)]
    await _until(lambda: server.site.guard.per_ip == {"127.0.0.2": 2})
    reader, writer = await server.connect("127.0.0.2")
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # sent at once: must not turn the answer into a reset
    answer = await _answer(reader)
    assert _status(answer) == 503
    assert b"retry-after: 5" in answer.lower() and b"connection: close" in answer.lower()
    error = _error(answer)
    assert error["code"] == "UNAVAILABLE" and "from your address" in str(error["message"])
    writer.close()
    assert server.site.guard.refused_per_ip == 1 and server.site.guard.refused == 0
    other_reader, other = await server.connect("127.0.0.3")  # another address is not affected
    other.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await asyncio.wait_for(other_reader.readuntil(b"ok 0"), 5)).startswith(b"HTTP/1.1 200")
    other.close()
    held[0][1].close()  # a slot is released on close ...
    await _until(lambda: server.site.guard.per_ip.get("127.0.0.2") == 1)
    again_reader, again = await server.connect("127.0.0.2")  # ... and taken again
    again.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await asyncio.wait_for(again_reader.readuntil(b"ok 0"), 5)).startswith(b"HTTP/1.1 200")
    for w in (held[1][1], again):
        w.close()
    await _until(lambda: server.site.guard.open == 0)
    assert server.site.guard.per_ip == {}  # no entry outlives its connections: memory is bounded


async def test_trusted_proxies_are_held_by_the_global_cap_only(listen: Callable[..., Awaitable[Listener]]) -> None:
    front = (ipaddress.ip_network("127.0.0.4/32"),)
    server = await listen(max_connections_per_ip=1, max_connections=3, header_timeout=30, trusted_proxies=front)
    held = [await server.connect("127.0.0.4") for _ in range(3)]
    await _until(lambda: server.site.guard.per_ip == {"127.0.0.4": 3})
    reader, writer = await server.connect("127.0.0.4")
    assert b"too many connections to this proxy" in await _answer(reader)  # the global cap
    writer.close()
    for _, w in held:
        w.close()


SECRETS = [
    b"Authorization: Basic bWFyazpwdXNoZXJwd2Q=\x01",
    b"Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.c2VjcmV0dG9rZW4\x01.sig",
    b"Cookie: session=s3cr3t-c00kie\x01",
    b"X-Secret\x01: s3cr3t-name",
]


@pytest.mark.parametrize("line", SECRETS)
async def test_parser_refusals_echo_nothing_and_log_one_line(
    listen: Callable[..., Awaitable[Listener]], caplog: pytest.LogCaptureFixture, line: bytes,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = await listen()
    reader, writer = await server.connect()
    writer.write(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n" + line + b"\r\n\r\n")
    answer = await _answer(reader)
    writer.close()
    assert _status(answer) == 400
    error = _error(answer)
    assert error["code"] == "UNSUPPORTED" and error["message"] == "malformed HTTP request"
    secret = line.split(b":", 1)[1].strip(b" \x01")[:12].decode()
    assert secret.encode() not in answer
    records = [r for r in caplog.records if r.name.startswith(("aiohttp", "proxy"))]
    assert not [r for r in records if secret in r.getMessage() or r.exc_info], [r.getMessage() for r in records]
    refusals = [r for r in records if "malformed HTTP request" in r.getMessage()]
    assert len(refusals) == 1 and "127.0.0.1" in refusals[0].getMessage()


async def test_a_client_that_never_starts_tls_is_closed_at_the_header_timeout(
    listen: Callable[..., Awaitable[Listener]],
) -> None:
    ca = trustme.CA()
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(tls)
    server = await listen(tls=tls, header_timeout=0.3)
    reader, writer = await server.connect()
    writer.write(b"\x16\x03\x01")  # a ClientHello that never ends
    assert await _answer(reader, timeout=10) == b""
    writer.close()
    assert server.site.guard.open == 0
