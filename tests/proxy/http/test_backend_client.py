"""BackendClient against scripted raw backends: what is sent, and when a connection is (never) reused.

A reused connection is where one client's answer could leak into the next
request, so every test that reuses or refuses one counts the connections
the backend accepted and compares the exact bytes it received. The backend
here is a bare ``asyncio.start_server`` (not aiohttp), so it can send what
a real server would not. The helpers are imported by the other
``test_backend_client_*`` modules.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import pytest
from multidict import CIMultiDict

from proxy.http.backend import Answer, BackendClient

HIGH = 512 * 1024
WAIT = 10.0  # a generous bound on waits that end as soon as the awaited thing happens


@dataclass
class Peer:
    """One connection the scripted backend accepted; ``heads`` is every request head it read, in order."""

    index: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    heads: list[bytes] = field(default_factory=list)
    tail: bytes = b""  # what came after the last whole head, before the client closed
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)  # the backend's: a test sets it to let a script on

    async def request(self) -> bytes | None:
        """The next request head, or None once the client closed the connection."""
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            self.tail = exc.partial
            self.closed.set()
            return None
        except ConnectionError:
            self.closed.set()
            return None
        self.heads.append(head)
        return head

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def closed_by_client(self) -> bytes:
        """Wait until the client closed this connection (a script reading requests sees it); what came last."""
        async with asyncio.timeout(WAIT):
            await self.closed.wait()
        return self.tail


Script = Callable[[Peer], Awaitable[None]]


@dataclass
class Backend:
    script: Script
    peers: list[Peer] = field(default_factory=list)
    server: asyncio.Server | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    go: asyncio.Event = field(default_factory=asyncio.Event)

    async def stop(self) -> None:
        """Cut every connection so each script ends on its own (a cancelled one makes asyncio log an error)."""
        assert self.server is not None
        self.server.close()
        for peer in self.peers:
            peer.writer.transport.abort()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=WAIT)

    @property
    def origin(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = Peer(len(self.peers), reader, writer, go=self.go)
        self.peers.append(peer)
        task = asyncio.current_task()
        assert task is not None
        self.tasks.append(task)
        try:
            await self.script(peer)
        except ConnectionError:
            pass  # the client aborted: what the test checks is recorded already
        finally:
            writer.close()


def ok(body: bytes = b"ok", extra: str = "") -> bytes:
    return f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode() + body


def numbered(peer: Peer) -> bytes:
    """An answer naming the connection and the request on it: a leaked answer shows as the wrong name."""
    return ok(f"c{peer.index}r{len(peer.heads)}".encode())


async def answer_all(peer: Peer) -> None:
    while await peer.request() is not None:
        await peer.send(numbered(peer))


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[Script], Awaitable[Backend]]]:
    backends: list[Backend] = []

    async def start(script: Script) -> Backend:
        backend = Backend(script)
        backend.server = await asyncio.start_server(backend._accept, "127.0.0.1", 0)
        backends.append(backend)
        return backend

    yield start
    for backend in backends:
        await backend.stop()


@pytest.fixture
async def clients() -> AsyncIterator[Callable[..., BackendClient]]:
    made: list[BackendClient] = []

    def make(origin: str, connect_timeout: float = 5.0, read_timeout: float = WAIT) -> BackendClient:
        made.append(BackendClient(origin, connect_timeout=connect_timeout, read_timeout=read_timeout))
        return made[-1]

    yield make
    for client in made:
        await client.close()


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port that accepts no connection: its one-slot accept queue is already full, so SYNs are dropped."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    filler = socket.create_connection(listener.getsockname())
    yield listener.getsockname()[1]
    filler.close()
    listener.close()


Serve = Callable[[Script], Awaitable[Backend]]
Clients = Callable[..., BackendClient]


async def fetch(client: BackendClient, method: str = "GET", target: str = "/", **headers: str) -> tuple[Answer, bytes]:
    """One whole request: the answer (already released) and its body; bounded, so that no mistake hangs."""
    async with asyncio.timeout(WAIT):
        answer = await client.request(method, target, CIMultiDict(headers or {"Host": "registry"}), HIGH)
        try:
            return answer, await answer.read()
        finally:
            answer.release()


async def gone(answer: Answer) -> None:
    """Wait until the client has dropped the answer's connection."""
    async with asyncio.timeout(WAIT):
        while answer.transport is not None:
            await asyncio.sleep(0.01)


# -- keep-alive ------------------------------------------------------------------------------------------
async def test_three_gets_share_one_connection_and_send_only_the_given_headers(serve: Serve,
                                                                               clients: Clients) -> None:
    backend = await serve(answer_all)
    client = clients(backend.origin)
    headers = CIMultiDict([("Host", "registry:5000"), ("Accept", "a/b"), ("Accept", "c/d"), ("X-Forwarded-For", "1")])
    bodies = []
    for i in range(3):
        answer = await client.request("GET", f"/v2/x/manifests/{i}?n=1", headers, HIGH)
        assert (answer.status, answer.reason, answer.content_length) == (200, "OK", 4)
        bodies.append(await answer.read())
        answer.release()
    assert bodies == [b"c0r1", b"c0r2", b"c0r3"]
    (peer,) = backend.peers
    assert peer.heads == [f"GET /v2/x/manifests/{i}?n=1 HTTP/1.1\r\nHost: registry:5000\r\nAccept: a/b\r\n"
                          f"Accept: c/d\r\nX-Forwarded-For: 1\r\n\r\n".encode() for i in range(3)]
    await client.close()
    assert await peer.closed_by_client() == b""  # closed, and nothing else was ever sent


async def test_answers_without_a_body_keep_the_connection(serve: Serve, clients: Clients) -> None:
    """HEAD (with the blob's Content-Length), 204 and 304 end at their head: the connection goes on."""
    replies = iter([b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n",
                    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n", numbered])

    async def script(peer: Peer) -> None:
        while await peer.request() is not None:
            reply = next(replies)
            await peer.send(reply if isinstance(reply, bytes) else reply(peer))

    backend = await serve(script)
    client = clients(backend.origin)
    head, body = await fetch(client, "HEAD")
    assert (head.status, head.content_length, body) == (200, 1000, b"")
    assert [(a.status, b) for a, b in [await fetch(client), await fetch(client)]] == [(204, b""), (304, b"")]
    assert (await fetch(client))[1] == b"c0r4"
    assert len(backend.peers) == 1


@pytest.mark.parametrize("reply", [
    ok(extra="Connection: close\r\n"), b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok",
], ids=["connection-close", "http-1.0", "http-1.0-keep-alive"])
async def test_an_answer_that_ends_the_connection_is_not_reused(serve: Serve, clients: Clients, reply: bytes) -> None:
    async def script(peer: Peer) -> None:  # would answer a second request: reuse would show
        while await peer.request() is not None:
            await peer.send(reply)

    backend = await serve(script)
    client = clients(backend.origin)
    assert [(await fetch(client))[1] for _ in range(2)] == [b"ok", b"ok"]
    assert [len(p.heads) for p in backend.peers] == [1, 1]
    assert await backend.peers[0].closed_by_client() == b""  # the client closed it


async def test_an_until_close_body_is_read_whole_and_not_reused(serve: Serve, clients: Clients) -> None:
    async def script(peer: Peer) -> None:
        await peer.request()
        await peer.send(b"HTTP/1.1 200 OK\r\n\r\n" + b"x" * 100_000)  # framed by the close only

    backend = await serve(script)
    client = clients(backend.origin)
    for _ in range(2):
        answer, body = await fetch(client)
        assert (answer.content_length, body) == (None, b"x" * 100_000)
    assert [len(p.heads) for p in backend.peers] == [1, 1]
