"""BackendClient bodies and failures against scripted raw backends: streaming, early ends, stalls, cancels.

The forwarder tells the backend's failures apart by type (a 502, a 504, or
an aborted client connection once the answer started), so each case checks
the exception class, and that the broken connection is never reused.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
from collections.abc import Awaitable, Callable

import pytest
from multidict import CIMultiDict

from proxy.http.backend import BackendBroken
from tests.proxy.http import test_backend_client as base
from tests.proxy.http.test_backend_client import HIGH, WAIT, Clients, Peer, Serve, answer_all, fetch, numbered, ok

serve, clients, full_backlog = base.serve, base.clients, base.full_backlog  # the fixtures

HEADERS = CIMultiDict(Host="registry")


async def outcome(aw: Awaitable[object]) -> BaseException | object:
    """The exception ``aw`` ends with (or its result), failing the test if it does not end within WAIT.

    Not ``asyncio.timeout``: its TimeoutError would pass for the read timeout under test.
    """
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait({task}, timeout=WAIT)
    if not done:
        task.cancel()
        pytest.fail(f"still waiting after {WAIT}s")
    return task.exception() or task.result()


def then(first: Callable[[Peer], Awaitable[None]]) -> Callable[[Peer], Awaitable[None]]:
    """Connection 0 runs ``first``; any later connection answers every request normally."""

    async def script(peer: Peer) -> None:
        await (first(peer) if peer.index == 0 else answer_all(peer))

    return script


def chunked(data: bytes, rng: random.Random) -> bytes:
    out, pos = [], 0
    while pos < len(data):
        size = rng.randint(1, 70_000)
        ext = rng.choice([b"", b";a=b"])
        out.append(f"{min(size, len(data) - pos):x}".encode() + ext + b"\r\n" + data[pos:pos + size] + b"\r\n")
        pos += size
    return b"".join(out) + b"0\r\n\r\n"


async def test_a_chunked_body_streams_whole_and_leaves_the_connection_reusable(serve: Serve,
                                                                               clients: Clients) -> None:
    data = os.urandom(3 * 1024 * 1024 + 5)
    wire = chunked(data, random.Random(7))

    async def first(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        for i in range(0, len(wire), 50_000):  # segment boundaries fall anywhere in the chunk framing
            await peer.send(wire[i:i + 50_000])
        await answer_all(peer)

    backend = await serve(first)
    client = clients(backend.origin)
    answer = await client.request("GET", "/", HEADERS, HIGH)
    assert answer.content_length is None
    digest, size = hashlib.sha256(), 0
    while piece := await answer.read_chunk(64 * 1024):
        assert len(piece) <= 64 * 1024
        digest.update(piece)
        size += len(piece)
    answer.release()
    assert (size, digest.hexdigest()) == (len(data), hashlib.sha256(data).hexdigest())
    assert (await fetch(client))[1] == b"c0r2"
    assert len(backend.peers) == 1


def _linger0(peer: Peer) -> None:
    peer.writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\1\0\0\0\0\0\0\0")


@pytest.mark.parametrize("reset", [False, True], ids=["close", "reset"])
@pytest.mark.parametrize("partial", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"a" * 300,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3e8\r\n" + b"a" * 300,
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n12c\r\n" + b"a" * 300 + b"\r\n",
], ids=["length", "chunk-data", "between-chunks"])
async def test_an_early_end_mid_body_is_backend_broken(serve: Serve, clients: Clients, partial: bytes,
                                                       reset: bool) -> None:
    async def first(peer: Peer) -> None:
        await peer.request()
        await peer.send(partial)
        await peer.go.wait()  # the client has the head and the bytes so far
        if reset:
            _linger0(peer)

    backend = await serve(then(first))
    client = clients(backend.origin)
    answer = await client.request("GET", "/", HEADERS, HIGH)
    got = b""
    while len(got) < 300:
        got += await answer.read_chunk(1 << 20)
    assert got == b"a" * 300
    backend.go.set()
    failure = await outcome(answer.read_chunk(1 << 20))
    assert isinstance(failure, BackendBroken) and not isinstance(failure, OSError)  # not "the client left"
    assert isinstance(await outcome(answer.read_chunk(1 << 20)), BackendBroken)  # never b"": not a clean end
    answer.release()
    assert (await fetch(client))[1] == b"c1r1"


@pytest.mark.parametrize("reply", [b"", b"HTTP/1.1 200 OK\r\nContent-Le"], ids=["nothing", "half-a-head"])
async def test_an_early_end_before_the_head_is_backend_broken(serve: Serve, clients: Clients, reply: bytes) -> None:
    async def first(peer: Peer) -> None:
        await peer.request()
        await peer.send(reply)

    backend = await serve(then(first))
    client = clients(backend.origin)
    failure = await outcome(client.request("GET", "/", HEADERS, HIGH))
    assert isinstance(failure, BackendBroken)  # a fresh connection: not retried
    assert (await fetch(client))[1] == b"c1r1"


async def test_no_head_within_the_read_timeout_is_a_timeout(serve: Serve, clients: Clients) -> None:
    async def first(peer: Peer) -> None:
        await peer.request()
        await peer.request()  # silent until the client gives up

    backend = await serve(then(first))
    client = clients(backend.origin, read_timeout=0.2)
    assert isinstance(await outcome(client.request("GET", "/", HEADERS, HIGH)), TimeoutError)
    assert await backend.peers[0].closed_by_client() == b""
    assert (await fetch(client))[1] == b"c1r1"


async def test_a_body_that_stalls_is_a_timeout_from_read_chunk(serve: Serve, clients: Clients) -> None:
    async def first(peer: Peer) -> None:
        await peer.request()
        await peer.send(ok(b"b" * 100)[:-50])
        await peer.request()

    backend = await serve(then(first))
    client = clients(backend.origin, read_timeout=0.2)
    answer = await client.request("GET", "/", HEADERS, HIGH)
    assert await answer.read_chunk(1 << 20) == b"b" * 50
    assert isinstance(await outcome(answer.read_chunk(1 << 20)), TimeoutError)
    assert isinstance(await outcome(answer.read_chunk(1 << 20)), TimeoutError)  # and stays broken
    answer.release()
    await backend.peers[0].closed_by_client()
    assert (await fetch(client))[1] == b"c1r1"


async def test_a_refused_connection_is_an_os_error(clients: Clients) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    failure = await outcome(clients(f"http://127.0.0.1:{port}").request("GET", "/", HEADERS, HIGH))
    assert isinstance(failure, OSError) and not isinstance(failure, TimeoutError)


async def test_no_connection_within_the_connect_timeout_is_unreachable_not_silent(clients: Clients,
                                                                                  full_backlog: int) -> None:
    """An OSError that is not a TimeoutError: the forwarder makes it a 502 (unreachable), not a 504."""
    client = clients(f"http://127.0.0.1:{full_backlog}", connect_timeout=0.3)
    failure = await outcome(client.request("GET", "/", HEADERS, HIGH))
    assert isinstance(failure, OSError) and not isinstance(failure, TimeoutError)


async def test_interim_answers_are_skipped(serve: Serve, clients: Clients) -> None:
    async def first(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 100 Continue\r\n\r\n")
        await asyncio.sleep(0.05)
        await peer.send(b"HTTP/1.1 103 Early Hints\r\nLink: </x>; rel=preload\r\n\r\n")
        await asyncio.sleep(0.05)
        await peer.send(numbered(peer))
        await answer_all(peer)

    backend = await serve(first)
    client = clients(backend.origin)
    answer, body = await fetch(client)
    assert (answer.status, "Link" in answer.headers, body) == (200, False, b"c0r1")
    assert (await fetch(client))[1] == b"c0r2"


@pytest.mark.parametrize("reply", [
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"HTTP/1.1 200 OK\r\n" + b"X-Long: " + b"x" * (200 * 1024),  # and no end of the head in sight
], ids=["101", "endless-head"])
async def test_answers_that_cannot_be_relayed_are_backend_broken(serve: Serve, clients: Clients,
                                                                 reply: bytes) -> None:
    async def first(peer: Peer) -> None:
        await peer.request()
        await peer.send(reply)
        await peer.request()

    backend = await serve(then(first))
    client = clients(backend.origin)
    assert isinstance(await outcome(client.request("GET", "/", HEADERS, HIGH)), BackendBroken)
    await backend.peers[0].closed_by_client()
    assert (await fetch(client))[1] == b"c1r1"
