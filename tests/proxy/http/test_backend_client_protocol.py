"""The backend connection's protocol fed by hand: segment boundaries chosen by the test, not by TCP.

Over a real socket, whether two writes of the backend arrive in one
``data_received`` or two is up to the kernel; here every split is
explicit, so the outcome for each one is checked, and the pausing of the
socket (backpressure) is seen directly on the transport.
"""

from __future__ import annotations

import asyncio

import pytest

from proxy.http.backend.connection import BackendBroken, Connection
from proxy.http.backend.wire import MAX_HEAD


class FakeTransport(asyncio.Transport):
    """Records what the protocol does to its socket."""

    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.paused = False
        self.aborted = False
        self.pauses = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def pause_reading(self) -> None:
        self.paused, self.pauses = True, self.pauses + 1

    def resume_reading(self) -> None:
        self.paused = False

    def abort(self) -> None:
        self.aborted = True

    def close(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.aborted


def started(method: str = "GET", high: int = 1 << 20) -> tuple[Connection, FakeTransport]:
    conn = Connection(asyncio.get_running_loop(), read_timeout=10.0)
    transport = FakeTransport()
    conn.connection_made(transport)
    conn.start(method, f"{method} / HTTP/1.1\r\n\r\n".encode(), high)
    assert transport.written == f"{method} / HTTP/1.1\r\n\r\n".encode()
    return conn, transport


def feed(conn: Connection, transport: FakeTransport, parts: list[bytes]) -> None:
    """As the event loop would: no more bytes once the protocol aborted its transport."""
    for part in parts:
        if transport.aborted:
            return
        conn.data_received(part)


async def body(conn: Connection) -> bytes:
    out = b""
    while piece := await conn.read(1 << 20):
        out += piece
    return out


def splits(data: bytes) -> list[list[bytes]]:
    """The stream whole, byte by byte, and cut at every third byte."""
    return [[data], [data[i:i + 1] for i in range(len(data))], [data[i:i + 3] for i in range(0, len(data), 3)]]


ANSWER = (b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n"
          b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\nT: 1\r\n\r\n")


@pytest.mark.parametrize("split", range(3), ids=["whole", "bytes", "threes"])
async def test_interim_answers_are_skipped_and_any_split_reads_the_same(split: int) -> None:
    conn, transport = started()
    feed(conn, transport, splits(ANSWER)[split])
    head = await conn.head()
    assert (head.status, head.headers.get("Link")) == (200, None)
    assert await body(conn) == b"abcde"
    assert conn.finished() and conn.reusable and not transport.aborted


async def test_101_is_not_an_interim_answer() -> None:
    conn, transport = started()
    conn.data_received(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n")
    with pytest.raises(BackendBroken):
        await conn.head()
    assert transport.aborted and not conn.reusable


@pytest.mark.parametrize("stream", [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokJUNK",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\nJUNK",
], ids=["length", "chunked"])
@pytest.mark.parametrize("split", range(3), ids=["whole", "bytes", "threes"])
async def test_bytes_after_the_body_close_the_connection_whatever_the_split(stream: bytes, split: int) -> None:
    """The answer itself may be whole or broken depending on the split; the connection is never kept."""
    conn, transport = started()
    feed(conn, transport, splits(stream)[split])
    try:
        got = await body(conn)
    except BackendBroken:
        got = None
    assert got in (b"ok", None)
    assert transport.aborted and not conn.reusable


@pytest.mark.parametrize(("size", "piece"), [(MAX_HEAD + 1000, None), (3 * MAX_HEAD, 4096)],
                         ids=["just-over-in-one-segment", "far-over-in-4k-pieces"])
async def test_a_head_over_max_head_is_refused_however_it_arrives(size: int, piece: int | None) -> None:
    """A registry's head is a few hundred bytes; a larger one (with or without its end yet) is refused."""
    stream = b"HTTP/1.1 200 OK\r\nX-Big: " + b"v" * size + b"\r\nContent-Length: 0\r\n\r\n"
    conn, transport = started()
    feed(conn, transport, [stream[i:i + piece] for i in range(0, len(stream), piece)] if piece else [stream])
    with pytest.raises(BackendBroken):
        await conn.head()
    assert transport.aborted


async def test_bytes_before_any_request_break_the_connection() -> None:
    conn = Connection(asyncio.get_running_loop(), read_timeout=10.0)
    transport = FakeTransport()
    conn.connection_made(transport)
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
    assert transport.aborted and not conn.reusable


async def test_a_head_answer_with_a_body_is_not_reused() -> None:
    conn, transport = started("HEAD")
    conn.data_received(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody")
    head = await conn.head()
    assert (head.status, head.content_length) == (200, 4)
    assert transport.aborted and not conn.reusable


@pytest.mark.parametrize("chunked", [False, True])
async def test_the_socket_pauses_above_high_and_resumes_below_half(chunked: bool) -> None:
    high = 64 * 1024
    piece = b"z" * 16 * 1024
    conn, transport = started(high=high)
    total = 40 * len(piece)
    conn.data_received(b"HTTP/1.1 200 OK\r\n" + (b"Transfer-Encoding: chunked" if chunked else
                                                 f"Content-Length: {total}".encode()) + b"\r\n\r\n")
    await conn.head()
    fed = 0
    while not transport.paused:  # the backend sends as long as the socket is read
        conn.data_received(b"4000\r\n" + piece + b"\r\n" if chunked else piece)
        fed += len(piece)
        assert fed <= high + len(piece)
    assert fed > high
    drained = 0
    while transport.paused:
        drained += len(await conn.read(4096))
    assert high // 2 - 4096 < fed - drained <= high // 2  # resumed as soon as half of high was left
    assert transport.pauses == 1
    if chunked:
        conn.data_received(b"".join(b"4000\r\n" + piece + b"\r\n" for _ in range(40 - fed // len(piece))) +
                           b"0\r\n\r\n")
    else:
        conn.data_received(piece * (40 - fed // len(piece)))
    assert drained + len(await body(conn)) == total
    assert conn.finished() and conn.reusable and not transport.paused
