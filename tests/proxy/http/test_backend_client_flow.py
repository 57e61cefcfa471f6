"""BackendClient flow control over real sockets: a reader that stops, and a reader that is cancelled.

Memory per transfer must not grow with blob size (a 32 MiB blob stays in
the backend's socket, not in the proxy), and a request the client gave up
on must not leave the rest of its answer in a pooled connection.
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import pytest
from multidict import CIMultiDict

from proxy.http.backend import Answer
from tests.proxy.http import test_backend_client as base
from tests.proxy.http.test_backend_client import HIGH, WAIT, Clients, Peer, Serve, answer_all, fetch, ok

serve, clients = base.serve, base.clients  # the fixtures
HEADERS = CIMultiDict(Host="registry")
BIG = 32 * 1024 * 1024


async def settled(progress: list[int]) -> None:
    """Wait until the backend's writes stop making progress (they block): unchanged for half a second."""
    last, still = -1, 0
    async with asyncio.timeout(60):
        while still < 5:
            await asyncio.sleep(0.1)
            still = still + 1 if progress[0] == last else 0
            last = progress[0]


def buffered(answer: Answer) -> int:
    return answer._conn._buffered  # what the protocol holds in memory: only it knows


async def test_a_reader_that_stops_pauses_the_socket_and_then_gets_every_byte(serve: Serve,
                                                                              clients: Clients) -> None:
    data = os.urandom(BIG)
    sent = [0]

    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(f"HTTP/1.1 200 OK\r\nContent-Length: {BIG}\r\n\r\n".encode())
        for i in range(0, BIG, 256 * 1024):  # as fast as the socket takes it
            await peer.send(data[i:i + 256 * 1024])
            sent[0] = i + 256 * 1024
        await answer_all(peer)

    backend = await serve(script)
    client = clients(backend.origin)
    answer = await client.request("GET", "/v2/a/blobs/sha256:0", HEADERS, HIGH)
    await settled(sent)
    assert answer.transport is not None and not answer.transport.is_reading()  # paused, not merely slow
    assert buffered(answer) <= 4 * 1024 * 1024  # about HIGH plus one socket read; never the blob
    assert sent[0] < BIG  # the rest waits in the backend: loopback buffers hold a few MiB at most
    digest, size, peak = hashlib.sha256(), 0, 0
    while piece := await answer.read_chunk(256 * 1024):
        digest.update(piece)
        size += len(piece)
        peak = max(peak, buffered(answer))
    answer.release()
    assert (size, digest.hexdigest()) == (BIG, hashlib.sha256(data).hexdigest())
    assert peak <= 4 * 1024 * 1024
    assert (await fetch(client))[1] == b"c0r2"  # read to the end: kept
    assert len(backend.peers) == 1


def stalls_after(part: bytes) -> base.Script:
    """Connection 0 sends ``part`` of an answer and then nothing (until the client closes it)."""

    async def script(peer: Peer) -> None:
        if peer.index > 0:
            return await answer_all(peer)
        await peer.request()
        await peer.send(part)
        await peer.request()

    return script


async def test_a_read_cancelled_mid_body_closes_the_connection(serve: Serve, clients: Clients) -> None:
    backend = await serve(stalls_after(ok(b"p" * 1000)[:-900]))
    client = clients(backend.origin)
    answer = await client.request("GET", "/", HEADERS, HIGH)
    assert await answer.read_chunk(1 << 20) == b"p" * 100
    reader = asyncio.create_task(answer.read_chunk(1 << 20))
    await asyncio.sleep(0.05)  # waiting for bytes that do not come
    reader.cancel()
    with pytest.raises(asyncio.CancelledError):
        await reader
    assert await backend.peers[0].closed_by_client() == b""  # at once, not only when released
    answer.release()
    answer2, body = await fetch(client)
    assert (answer2.status, body) == (200, b"c1r1")
    assert [len(p.heads) for p in backend.peers] == [1, 1]


async def test_a_request_cancelled_before_its_head_closes_the_connection(serve: Serve, clients: Clients) -> None:
    """The head may still come: on a pooled connection it would be the next request's answer."""

    async def script(peer: Peer) -> None:
        while await peer.request() is not None:
            if len(peer.heads) == 2:
                await peer.go.wait()  # late: the client has given up by now
            await peer.send(base.numbered(peer))

    backend = await serve(script)
    client = clients(backend.origin)
    assert (await fetch(client))[1] == b"c0r1"
    request = asyncio.create_task(client.request("GET", "/", HEADERS, HIGH))
    await asyncio.sleep(0.05)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    backend.go.set()
    async with asyncio.timeout(WAIT):
        await backend.peers[0].closed.wait()
    assert (await fetch(client))[1] == b"c1r1"  # not c0r2, the answer to the cancelled request


async def test_a_client_closed_mid_answer_drops_the_connection_on_release(serve: Serve, clients: Clients) -> None:
    """The pool closes; an answer still being read is not put back into it afterwards."""
    backend = await serve(answer_all)
    client = clients(backend.origin)
    answer = await client.request("GET", "/", HEADERS, HIGH)
    await client.close()
    assert await answer.read() == b"c0r1"
    answer.release()
    assert await backend.peers[0].closed_by_client() == b""
