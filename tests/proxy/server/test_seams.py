"""The server seams in-process: connection cap, request-head timer, JSON parser refusals.

A real listening socket on loopback with :class:`GuardedSite` and a tiny
app, driven by raw asyncio streams, so each limit is seen exactly as a
client sees it. Timeouts are fractions of a second; every bound is generous.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from aiohttp import web

from proxy.config import Limits
from proxy.server.aiohttp_seams import GuardedSite

HEAD_TIMEOUT = 0.4


@dataclass
class Listener:
    site: GuardedSite
    runner: web.AppRunner

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.site.port)


async def _slow(request: web.Request) -> web.Response:
    await asyncio.sleep(float(request.query.get("sleep", "0")))
    body = await request.read()
    return web.Response(text=f"ok {len(body)}")


@pytest.fixture
async def listen() -> AsyncIterator[Callable[..., Awaitable[Listener]]]:
    runners: list[web.AppRunner] = []

    async def start(**limits: float) -> Listener:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", _slow)
        options = {"keepalive_timeout": 30.0}
        runner = web.AppRunner(app, **options)
        await runner.setup()
        runners.append(runner)
        merged = {"header_timeout": HEAD_TIMEOUT, **limits}
        site = GuardedSite(runner, "127.0.0.1", 0, limits=Limits(**merged), handler_options=options)  # type: ignore[arg-type]
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
