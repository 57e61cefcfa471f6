"""The pool of kept-alive backend connections, for requests without a body: one write, one read.

Every pull (``GET``/``HEAD`` of manifests, blobs, tag lists) and every
body-less write goes through here; uploads keep aiohttp's client
(:mod:`proxy.http.upload`). Issue 15 measured aiohttp's client at a fifth
of the proxy's CPU per manifest ``HEAD``; this does the same job with a
protocol that parses the head where the bytes arrive
(:mod:`proxy.http.backend.connection`) and wakes the handler once.

Idle connections are kept for :data:`KEEPALIVE` seconds, the most recently
used first; a ``GET``/``HEAD`` that finds its kept-alive connection closed
under it (the backend's idle timeout racing our reuse) is sent once more on
a new one, other methods are not (the backend may have acted on them).
"""

from __future__ import annotations

import asyncio
import errno
import ssl
from urllib.parse import urlsplit

from multidict import CIMultiDict

from proxy.http.backend.connection import BackendBroken, Connection
from proxy.http.backend.wire import Head, request_head

__all__ = ["KEEPALIVE", "Answer", "BackendClient", "ConnectTimeout"]

KEEPALIVE = 30.0  # seconds an idle connection is kept (aiohttp's default keepalive_timeout)
RETRYABLE = frozenset({"GET", "HEAD"})  # may be sent again when a kept-alive connection was closed under us


class ConnectTimeout(OSError):
    """No connection within ``timeouts.connect``: unreachable (502), unlike a silent backend (504).

    Not a ``TimeoutError``, which the forwarder reads as "connected, but no answer".
    """


class Answer:
    """The backend's answer: status and headers at once, the body by :meth:`read_chunk` or :meth:`read`."""

    def __init__(self, client: BackendClient, conn: Connection, head: Head) -> None:
        self._client, self._conn = client, conn
        self.status, self.reason, self.headers = head.status, head.reason, head.headers
        self.content_length = head.content_length

    @property
    def transport(self) -> asyncio.BaseTransport | None:
        return self._conn.transport

    async def read_chunk(self, limit: int) -> bytes:
        return await self._conn.read(limit)

    async def read(self) -> bytes:
        parts = []
        while piece := await self._conn.read(1 << 30):
            parts.append(piece)
        return b"".join(parts)

    def release(self) -> None:
        """Give the connection back (kept only if the whole answer was read and may be followed by another)."""
        self._client.give_back(self._conn)


class BackendClient:
    """The pool of kept-alive connections to one backend origin (``http://`` or ``https://``)."""

    def __init__(self, origin: str, *, connect_timeout: float, read_timeout: float,
                 keepalive: float = KEEPALIVE) -> None:
        parts = urlsplit(origin)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = ssl.create_default_context() if parts.scheme == "https" else None
        self.connect_timeout, self.read_timeout, self.keepalive = connect_timeout, read_timeout, keepalive
        self._idle: list[Connection] = []  # most recently used last: reuse the warmest
        self._sweeper: asyncio.TimerHandle | None = None  # closes connections idle too long, even with no traffic
        self._closed = False

    async def request(self, method: str, target: str, headers: CIMultiDict[str], high: int) -> Answer:
        """Send a request without a body and wait for the head of its answer.

        Raises OSError (no connection; :class:`ConnectTimeout` after
        ``timeouts.connect``), ValueError (a header that would split),
        TimeoutError (no head within ``timeouts.read``) or
        :class:`BackendBroken`. A ``GET``/``HEAD`` on a kept-alive connection
        the backend had closed is sent once more on a new one.
        """
        head = request_head(method, target, headers.items())
        while True:
            conn = self._take()
            fresh = conn is None
            if conn is None:
                conn = await self._connect()
            conn.start(method, head, high)
            try:
                answer = await conn.head()
            except BackendBroken:
                if fresh or method not in RETRYABLE:
                    raise
                continue  # a stale kept-alive connection: the backend closed it while idle
            return Answer(self, conn, answer)

    @property
    def idle_connections(self) -> int:
        """Kept-alive connections waiting for the next request (what a reuse would take)."""
        return len(self._idle)

    def _take(self) -> Connection | None:
        now = asyncio.get_running_loop().time()
        while self._idle:
            conn = self._idle.pop()
            alive = conn.transport is not None and not conn.transport.is_closing()
            if alive and now - conn.idle_since < self.keepalive:
                return conn
            if conn.transport is not None:
                conn.transport.close()
        return None

    async def _connect(self) -> Connection:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: Connection(loop, self.read_timeout), self.host, self.port, ssl=self.ssl,
                    server_hostname=self.host if self.ssl else None)
        except TimeoutError:
            raise ConnectTimeout(errno.ETIMEDOUT, f"no connection within {self.connect_timeout:g}s") from None
        return conn

    def give_back(self, conn: Connection) -> None:
        if conn.transport is None:
            return
        if self._closed or not conn.reusable or not conn.finished():
            conn.transport.abort()  # part of an answer may still come: never hand it to the next request
            return
        loop = asyncio.get_running_loop()
        conn.idle_since = loop.time()  # a byte now, between requests, is a WireError
        self._idle.append(conn)
        self._prune(conn.idle_since)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self.keepalive, self._sweep)

    def _sweep(self) -> None:
        self._sweeper = None
        loop = asyncio.get_running_loop()
        self._prune(loop.time())
        if self._idle and not self._closed:
            self._sweeper = loop.call_later(self.keepalive, self._sweep)

    def _prune(self, now: float) -> None:
        """Close connections idle longer than ``keepalive`` (the oldest are first in the list)."""
        while self._idle and now - self._idle[0].idle_since >= self.keepalive:
            old = self._idle.pop(0)
            if old.transport is not None:
                old.transport.close()

    async def close(self) -> None:
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
        for conn in self._idle:
            if conn.transport is not None:
                conn.transport.close()
        self._idle.clear()
