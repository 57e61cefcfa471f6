"""BackendClient connection reuse: a connection the backend closed, an answer left unread, stray bytes.

Each case would hand one request's answer (or the backend's garbage) to
the next request if the connection went back to the pool; the backend
counts its connections and numbers its answers, so a leak shows as the
wrong number.
"""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from proxy.http.backend import BackendBroken
from tests.proxy.http import test_backend_client as base
from tests.proxy.http.test_backend_client import (
    HIGH,
    Clients,
    Peer,
    Script,
    Serve,
    answer_all,
    fetch,
    gone,
    numbered,
    ok,
)

serve, clients = base.serve, base.clients  # the fixtures


# -- a kept-alive connection the backend closed ----------------------------------------------------------
async def test_a_connection_closed_while_idle_is_not_used_again(serve: Serve, clients: Clients) -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(numbered(peer))  # and close: the next request must not be sent here

    backend = await serve(script)
    client = clients(backend.origin)
    first, _ = await fetch(client)
    await gone(first)  # the client saw the close
    answer, body = await fetch(client, "DELETE")  # not retryable: it must not even need a retry
    assert (answer.status, body) == (200, b"c1r1")
    assert [len(p.heads) for p in backend.peers] == [1, 1]


def closes_on_second_request(later: Script) -> Script:
    """Connection 0 answers once, then reads the next request and closes: the race a kept-alive GET can lose."""

    async def script(peer: Peer) -> None:
        if peer.index == 0:
            await peer.request()
            await peer.send(numbered(peer))
            await peer.request()
            return
        await later(peer)

    return script


@pytest.mark.parametrize("method", ["GET", "HEAD"])
async def test_get_and_head_are_sent_once_more_on_a_new_connection(serve: Serve, clients: Clients,
                                                                   method: str) -> None:
    backend = await serve(closes_on_second_request(answer_all))
    client = clients(backend.origin)
    await fetch(client)
    answer, body = await fetch(client, method, "/v2/a/tags/list")
    assert (answer.status, body) == (200, b"" if method == "HEAD" else b"c1r1")
    assert [len(p.heads) for p in backend.peers] == [2, 1]
    assert backend.peers[0].heads[1] == backend.peers[1].heads[0]  # the same request, again


@pytest.mark.parametrize("method", ["DELETE", "POST", "PUT"])
async def test_other_methods_are_not_sent_twice(serve: Serve, clients: Clients, method: str) -> None:
    """The backend may have acted on it before closing: only the caller can decide to try again."""
    backend = await serve(closes_on_second_request(answer_all))
    client = clients(backend.origin)
    await fetch(client)
    with pytest.raises(BackendBroken):
        await fetch(client, method, "/v2/a/manifests/sha256:00")
    assert [len(p.heads) for p in backend.peers] == [2]


async def test_a_get_is_retried_only_once(serve: Serve, clients: Clients) -> None:
    async def closes(peer: Peer) -> None:
        await peer.request()

    backend = await serve(closes_on_second_request(closes))
    client = clients(backend.origin)
    await fetch(client)
    with pytest.raises(BackendBroken):
        await fetch(client)
    assert [len(p.heads) for p in backend.peers] == [2, 1]


# -- an answer not read to its end, or followed by stray bytes --------------------------------------------
async def test_a_partly_read_answer_does_not_leave_its_connection_for_the_next(serve: Serve,
                                                                              clients: Clients) -> None:
    async def script(peer: Peer) -> None:
        while await peer.request() is not None:
            await peer.send(ok(b"y" * 200_000) if peer.index == 0 else numbered(peer))

    backend = await serve(script)
    client = clients(backend.origin)
    answer = await client.request("GET", "/", CIMultiDict(Host="r"), HIGH)
    assert await answer.read_chunk(10) == b"y" * 10
    answer.release()
    assert (await fetch(client))[1] == b"c1r1"
    assert [len(p.heads) for p in backend.peers] == [1, 1]


async def test_a_body_read_to_its_last_byte_leaves_the_connection_reusable(serve: Serve,
                                                                           clients: Clients) -> None:
    """The counterpart: exactly Content-Length bytes read (no final empty read) is a finished answer."""
    backend = await serve(answer_all)
    client = clients(backend.origin)
    answer = await client.request("GET", "/", CIMultiDict(Host="r"), HIGH)
    assert await answer.read_chunk(2) + await answer.read_chunk(2) == b"c0r1"
    answer.release()
    assert (await fetch(client))[1] == b"c0r2"
    assert len(backend.peers) == 1


@pytest.mark.parametrize("stray", [b"JUNK", ok(b"stray")], ids=["junk", "an-answer-while-idle"])
async def test_bytes_after_an_answer_end_its_connection(serve: Serve, clients: Clients, stray: bytes) -> None:
    async def script(peer: Peer) -> None:
        if peer.index > 0:
            return await answer_all(peer)
        await peer.request()
        await peer.send(numbered(peer))
        await peer.go.wait()  # the answer was read and released: the stray bytes come in their own segment
        await peer.send(stray)
        await peer.request()  # until the client closes; it must send nothing here

    backend = await serve(script)
    client = clients(backend.origin)
    first, body = await fetch(client)
    assert body == b"c0r1"
    backend.go.set()
    await gone(first)  # the stray bytes made the client close it
    answer, body = await fetch(client)
    assert (answer.status, body) == (200, b"c1r1")
    assert [len(p.heads) for p in backend.peers] == [1, 1]
