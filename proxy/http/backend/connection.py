"""One backend connection as an asyncio protocol: the answer's head parsed where it arrives, the body streamed.

At most one request at a time. Bodies stream with backpressure: the
protocol pauses the socket once ``high`` bytes are buffered (twice the
reader's chunk size, as aiohttp's ``read_bufsize``) and resumes it when the
reader has taken half, so memory does not grow with blob size.
``timeouts.read`` bounds every wait for the backend's next bytes (the head,
then each piece of the body): a stall is a :class:`TimeoutError`. Any
other failure (reset, early close, bytes that do not frame) is a
:class:`BackendBroken`, never a ``ConnectionError``, so the forwarder cannot
mistake it for the client leaving. The connection is reusable only when an
answer framed unambiguously was read to its last byte.
"""

from __future__ import annotations

import asyncio
from collections import deque

from proxy.http.backend.wire import MAX_HEAD, Chunked, Head, WireError, parse_head

__all__ = ["BackendBroken", "Connection"]


class BackendBroken(Exception):
    """The backend reset, closed early or sent bytes that do not frame: its answer is lost."""


class Connection(asyncio.Protocol):
    """One backend connection; at most one request at a time; reused only when its last answer ended cleanly."""

    def __init__(self, loop: asyncio.AbstractEventLoop, read_timeout: float) -> None:
        self.loop = loop
        self.read_timeout = read_timeout
        self.transport: asyncio.Transport | None = None
        self.idle_since = 0.0
        self._buf = b""  # the head while it arrives
        self._method = ""
        self._head: Head | None = None
        self._left: int | None = None  # body bytes still due (length framing)
        self._chunked: Chunked | None = None
        self._pieces: deque[bytes] = deque()
        self._buffered = 0
        self._high = 512 * 1024  # pause reading above this many buffered body bytes
        self._paused = False
        self._ended = False  # the whole body arrived
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.reusable = False

    # -- asyncio.Protocol -------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            if self._head is None:
                self._head_bytes(data)
            else:
                self._body_bytes(data)
        except WireError as exc:
            self._fail(BackendBroken(f"the registry's answer could not be read: {exc}"))

    def eof_received(self) -> bool:
        if self._head is not None and self._left is None and self._chunked is None and not self._ended:
            self._end()  # framed by the close itself
        else:
            self._fail(BackendBroken("the registry closed the connection before its answer ended"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self.reusable = False
        self._fail(BackendBroken(f"connection to the registry lost: {exc.__class__.__name__ if exc else 'closed'}"))

    # -- parsing ----------------------------------------------------------------------------------------
    def _head_bytes(self, data: bytes) -> None:
        if not self._method:
            raise WireError("bytes from the registry while no request was sent")
        buf = self._buf + data if self._buf else data
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0 and len(buf) <= MAX_HEAD:
                self._buf = buf
                return
            if end < 0 or end > MAX_HEAD:
                raise WireError(f"a response head over {MAX_HEAD} bytes")
            head = parse_head(buf[:end], self._method)
            buf = buf[end + 4:]
            if head.status >= 200:
                break
            if head.status == 101:
                raise WireError("101 Switching Protocols")  # 1xx other than 101: interim, the real head follows
        self._buf = b""
        self._head = head
        if head.body is None and head.chunked:
            self._chunked = Chunked()
        else:
            self._left = head.body  # None: until close
        self._wake()
        if self._left == 0:
            self._end()
        if buf:
            self._body_bytes(buf)

    def _body_bytes(self, data: bytes) -> None:
        if self._ended:
            raise WireError("bytes after the end of the answer")
        if self._chunked is not None:
            for piece in self._chunked.feed(data):
                self._deliver(piece)
            if self._chunked.done:
                if self._chunked.extra:
                    raise WireError("bytes after the last chunk")
                self._end()
            return
        if self._left is not None:
            if len(data) > self._left:
                raise WireError("more body than Content-Length")
            self._left -= len(data)
        self._deliver(data)
        if self._left == 0:
            self._end()

    def _deliver(self, piece: bytes) -> None:
        if not piece:
            return
        self._pieces.append(piece)
        self._buffered += len(piece)
        if self._buffered > self._high and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def _end(self) -> None:
        self._ended = True
        self.reusable = self._head is not None and self._head.keep_alive
        self._wake()

    def _fail(self, exc: BaseException) -> None:
        self.reusable = False
        if self._error is None and not self._ended:
            self._error = exc
        self._wake()
        if self.transport is not None:
            self.transport.abort()

    # -- waiting --------------------------------------------------------------------------------------
    def _wake(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiter, self._waiter = self._waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _stalled(self) -> None:
        self._timer = None
        waiter, self._waiter = self._waiter, None
        self._error = self._error or TimeoutError()
        self.reusable = False
        if self.transport is not None:
            self.transport.abort()
        if waiter is not None and not waiter.done():
            waiter.set_exception(TimeoutError())

    async def _wait(self) -> None:
        waiter = self.loop.create_future()
        self._waiter = waiter
        self._timer = self.loop.call_later(self.read_timeout, self._stalled)
        try:
            await waiter
        except asyncio.CancelledError:  # the client left: what is still due would go to the next request
            self._fail(BackendBroken("the request was cancelled mid-answer"))
            raise

    # -- the request ------------------------------------------------------------------------------------
    def start(self, method: str, head: bytes, high: int) -> None:
        self._method, self._high = method, high
        self._head, self._left, self._chunked, self._ended, self._error = None, None, None, False, None
        self._buffered, self.reusable = 0, False
        self._pieces.clear()
        assert self.transport is not None
        self.transport.write(head)

    async def head(self) -> Head:
        while self._head is None:
            if self._error is not None:
                raise self._error
            await self._wait()
        return self._head

    async def read(self, limit: int) -> bytes:
        """Up to ``limit`` bytes of body; ``b""`` once it has all been read."""
        while not self._pieces:
            if self._ended:
                return b""
            if self._error is not None:
                raise self._error
            await self._wait()
        piece = self._pieces.popleft()
        if len(piece) > limit:
            piece, rest = piece[:limit], piece[limit:]
            self._pieces.appendleft(rest)
        self._buffered -= len(piece)
        if self._paused and self._buffered <= self._high // 2 and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return piece

    def finished(self) -> bool:
        return self._ended and not self._pieces
