"""The lean backend client inside the real app: what clients see when the registry's bytes go wrong.

Before the answer starts, a backend that cannot be framed is a 502 with the
registry's JSON error; after it starts, the client connection is aborted so
a short body looks short (never a clean end of a truncated blob). The
backend is a scripted raw server (see test_backend_client), the app is
``make_world``'s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest

from tests.proxy.http import test_backend_client as base
from tests.proxy.http.conftest import World
from tests.proxy.http.test_backend_client import WAIT, Backend, Peer, Serve, answer_all

serve, full_backlog = base.serve, base.full_backlog  # the fixtures
MakeWorld = Callable[..., Awaitable[World]]
TAGS = "/v2/a/tags/list"
BLOB = "/v2/a/blobs/sha256:" + "ab" * 32  # by digest: the cache reads it whole (the tee) before sending
UNREACHABLE = "the registry behind this proxy is unreachable; try again later"
BOUND = aiohttp.ClientTimeout(total=WAIT)  # a body the proxy wrongly ends as complete must not hang the test


def first_then_answers(reply: bytes, then_close: bool = False) -> base.Script:
    """Connection 0 answers its first request with ``reply`` (and closes if asked); the rest answer well."""

    async def script(peer: Peer) -> None:
        if peer.index > 0:
            return await answer_all(peer)
        await peer.request()
        await peer.send(reply)
        if not then_close:
            await peer.request()

    return script


async def world_before(make_world: MakeWorld, backend: Backend, **config: object) -> World:
    return await make_world(backend_url=backend.origin, **config)


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-A: a\r\n folded\r\n\r\nok",
    b"HELLO\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n",
    b"HTTP/1.1 200 OK\nX-Injected: 1\r\nContent-Length: 2\r\n\r\nok",  # a bare LF in the status line
], ids=["cl-and-te", "gzip-chunked", "two-lengths", "folded", "no-status-line", "101", "lf-in-reason"])
async def test_an_answer_that_cannot_be_framed_is_a_502(make_world: MakeWorld, serve: Serve, reply: bytes) -> None:
    backend = await serve(first_then_answers(reply))
    world = await world_before(make_world, backend)
    resp = await world.client.get(TAGS, timeout=BOUND)
    assert resp.status == 502
    assert (await resp.json())["errors"][0]["message"] == UNREACHABLE
    async with asyncio.timeout(WAIT):
        await backend.peers[0].closed.wait()  # that connection is dropped, never reused
    resp = await world.client.get(TAGS, timeout=BOUND)
    assert (resp.status, await resp.read()) == (200, b"c1r1")


@pytest.mark.parametrize("path", [TAGS, BLOB], ids=["streamed", "read-whole"])
@pytest.mark.parametrize("partial", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 300,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + b"a" * 300,
], ids=["length", "chunked"])
async def test_a_backend_that_closes_mid_body_aborts_the_client(make_world: MakeWorld, serve: Serve,
                                                                path: str, partial: bytes) -> None:
    backend = await serve(first_then_answers(partial, then_close=True))
    world = await world_before(make_world, backend)
    resp = await world.client.get(path, timeout=BOUND)
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    resp = await world.client.get(path, timeout=BOUND)  # nothing of the broken answer was kept (the cache, the pool)
    assert (resp.status, await resp.read()) == (200, b"c1r1")


async def test_a_backend_that_stalls_mid_body_aborts_the_client(make_world: MakeWorld, serve: Serve) -> None:
    backend = await serve(first_then_answers(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 300))
    world = await world_before(make_world, backend, timeouts={"read": 0.3})
    resp = await world.client.get(TAGS, timeout=BOUND)
    assert resp.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):
        await resp.read()
    async with asyncio.timeout(WAIT):
        await backend.peers[0].closed.wait()


async def test_no_head_in_time_is_504_and_no_connection_in_time_is_502(make_world: MakeWorld, serve: Serve,
                                                                       full_backlog: int) -> None:
    backend = await serve(first_then_answers(b""))
    world = await world_before(make_world, backend, timeouts={"read": 0.3})
    resp = await world.client.get(TAGS, timeout=BOUND)
    assert resp.status == 504
    assert "did not answer in time" in (await resp.json())["errors"][0]["message"]
    world = await make_world(backend_url=f"http://127.0.0.1:{full_backlog}", timeouts={"connect": 0.3})
    resp = await world.client.get(TAGS, timeout=BOUND)  # not the catalog: that one has its own client
    assert resp.status == 502
    assert (await resp.json())["errors"][0]["message"] == UNREACHABLE


async def test_pulls_share_one_backend_connection_and_send_one_head_each(make_world: MakeWorld,
                                                                        serve: Serve) -> None:
    backend = await serve(answer_all)
    world = await world_before(make_world, backend)
    for _ in range(3):
        resp = await world.client.get(TAGS, headers={"Accept": "a/b"}, timeout=BOUND)
        assert resp.status == 200
        await resp.read()
    head = await world.client.head(TAGS, timeout=BOUND)
    assert head.status == 200 and head.content_length == 4
    (peer,) = backend.peers
    assert len(peer.heads) == 4
    for sent in peer.heads:
        lines = sent.split(b"\r\n")
        names = [line.split(b":")[0].lower() for line in lines[1:-2]]
        assert len(names) == len(set(names))  # each header once: nothing added twice on the way
        assert b"host" in names and b"connection" not in names and b"content-length" not in names
    assert peer.heads[0].startswith(b"GET /v2/a/tags/list HTTP/1.1\r\n")
    assert peer.heads[3].startswith(b"HEAD /v2/a/tags/list HTTP/1.1\r\n")


async def raw_request(world: World, head: bytes) -> bytes:
    """Send ``head`` on a socket to the app as it is (aiohttp's client would refuse or re-encode it)."""
    reader, writer = await asyncio.open_connection(world.client.server.host, world.client.server.port)
    try:
        writer.write(head)
        async with asyncio.timeout(WAIT):
            return await reader.read()
    finally:
        writer.close()


async def test_non_ascii_header_bytes_reach_the_backend_unchanged(make_world: MakeWorld, serve: Serve) -> None:
    backend = await serve(answer_all)
    world = await world_before(make_world, backend)
    reply = await raw_request(world, b"GET /v2/a/tags/list HTTP/1.1\r\nHost: x\r\nX-A: caf\xc3\xa9 \xff\x80\r\n"
                                     b"Connection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"\r\n\r\nc0r1")
    (peer,) = backend.peers
    assert b"\r\nX-A: caf\xc3\xa9 \xff\x80\r\n" in peer.heads[0]


@pytest.mark.parametrize("value", [b"a\rX-Injected: 1", b"a\nX-Injected: 1", b"a\x00b", b"a\r\n X-Injected: 1"])
async def test_a_header_that_would_split_never_reaches_the_backend(make_world: MakeWorld, serve: Serve,
                                                                   value: bytes) -> None:
    """aiohttp's server refuses it first (a 400): request_head's own check cannot be reached from a client."""
    backend = await serve(answer_all)
    world = await world_before(make_world, backend)
    reply = await raw_request(world, b"GET /v2/a/tags/list HTTP/1.1\r\nHost: x\r\nX-A: " + value +
                                     b"\r\nConnection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.") and b" 400 " in reply.split(b"\r\n")[0]
    await asyncio.sleep(0.05)
    assert backend.peers == []
