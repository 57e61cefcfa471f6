"""The streaming forwarder: bytes pass through untouched, in both directions.

Memory must not grow with blob size, so bodies are relayed chunk by chunk
with backpressure (``await write`` waits for the socket). Errors are told
apart: before the response starts, a backend that cannot be reached
(refused, or no connection within ``timeouts.connect``) is a 502 and one
that does not answer within ``timeouts.read`` a 504; after it starts, the
client connection is aborted so a truncated body is never mistaken for a
complete one.

Two limits keep slow clients from holding the proxy hostage. A client that
takes none of a response for ``limits.send_timeout`` seconds is cut off
(:class:`SendWatch`), which frees its connection slot and its backend
connection. And backend requests hold one of ``limits.max_connections``
slots: the pool is sized to the client limit, so it cannot run out first,
and if a slot is still not free within :data:`POOL_WAIT` the answer is a
503 naming the proxy, never a 502/504 blaming a backend that was never asked.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import struct
import termios
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from auth.decision import Origin
from auth.errors import ProxyError
from proxy.http.backend_health import BackendHealth
from proxy.http.budget import Budget
from proxy.http.headers import downstream_headers, upstream_headers

__all__ = ["CHUNK", "POOL_WAIT", "ClientGone", "SendWatch", "Sink", "Tee", "Upstream", "forward"]

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
# Headers aiohttp's client would add on its own; the backend must see only the client's. Set once on the
# session (``proxy.http.runtime.new_session``): per request, aiohttp rebuilds the set on every call.
SKIP_AUTO = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})
POOL_WAIT = 1.0  # seconds a request may wait for a backend slot; then 503, at once rather than after connect
POLL = 1.0  # the longest gap between two looks at a blocked client's progress (shorter for short timeouts)
TIOCOUTQ = getattr(termios, "TIOCOUTQ", None)  # Linux's SIOCOUTQ: bytes the peer has not acknowledged yet


@dataclass(frozen=True)
class Upstream:
    session: aiohttp.ClientSession
    origin: str  # e.g. http://127.0.0.1:5000
    body_timeout: float = 60.0  # an upload that sends nothing for this long is aborted
    send_timeout: float = 60.0  # a client that takes none of a response for this long is cut off
    pool: int = 1024  # backend requests at once (limits.max_connections)
    _slots: asyncio.Semaphore = field(init=False, repr=False, compare=False)
    health: BackendHealth = field(init=False, repr=False, compare=False)  # logs outages once
    budget: Budget = field(init=False, repr=False, compare=False)  # buffer sizes shared by bodies in flight

    def __post_init__(self) -> None:
        object.__setattr__(self, "_slots", asyncio.Semaphore(self.pool))
        object.__setattr__(self, "health", BackendHealth(self.origin))
        object.__setattr__(self, "budget", Budget())

    @asynccontextmanager
    async def slot(self, request: web.Request, client: str) -> AsyncIterator[None]:
        """Hold one backend slot for a request and its whole response; 503 if none frees up in time."""
        try:
            async with asyncio.timeout(POOL_WAIT):
                await self._slots.acquire()
        except TimeoutError:
            log.warning("all %d backend slots busy for %gs: %s %s from %s answered 503 (proxy busy, not "
                        "the backend's fault)", self.pool, POOL_WAIT, request.method, request.path, client or "-")
            raise ProxyError(503, "UNAVAILABLE", "this proxy is busy: all its connections to the registry are "
                             "in use; try again shortly", {"Retry-After": "1"}) from None
        try:
            yield
        finally:
            self._slots.release()


class Sink(Protocol):
    """A copy of a forwarded body, read whole (``proxy.http.cache`` keeps small ones by digest)."""

    def add(self, chunk: bytes) -> None: ...
    def done(self) -> bool: ...  # the whole body arrived
    def close(self) -> None: ...  # always called last, whether or not it arrived


Tee = Callable[[int, CIMultiDict[str], int | None], Sink | None]  # (status, headers, length) -> a sink or None


class ClientGone(Exception):
    """The client went away mid-transfer: not the backend's fault, not a 502."""


class SendWatch:
    """Cuts a client off once it has taken none of a response for ``timeout`` seconds.

    ``await response.write()`` blocks while the socket is full, so "no
    progress" cannot be a timeout around each write: one 256 KiB chunk takes
    a 64 KiB/s reader four seconds, and the kernel's send buffer (megabytes,
    auto-tuned) frees up in bursts long after the client read. Progress is
    measured where it happens instead: while a write waits, a timer looks
    every ``poll`` seconds at the bytes not yet taken by the client (our
    transport's buffer plus the kernel's unacknowledged queue); any decrease
    is progress. Only a client that takes nothing for ``timeout`` seconds is
    cut: the transport is aborted, the blocked write fails, the caller
    releases the backend connection.
    """

    def __init__(self, transport: asyncio.Transport, timeout: float, client: str, what: str) -> None:
        self.timeout = timeout
        self.client = client  # for the log line: it names the client, not the backend
        self.what = what
        self._transport = transport
        self._fd = _fileno(transport)
        self._loop = asyncio.get_running_loop()
        self._poll = min(POLL, timeout / 4)
        self._writing = False
        self._last: int | None = None
        self._since = 0.0
        self._timer = self._loop.call_later(self._poll, self._check)

    async def send(self, write: Awaitable[None]) -> None:
        """Await one write under the watch; the start of a write counts as progress (the last one drained)."""
        self._writing, self._last, self._since = True, None, self._loop.time()
        try:
            await write
        finally:
            self._writing = False

    def close(self) -> None:
        self._timer.cancel()

    def _unsent(self) -> int:
        size = self._transport.get_write_buffer_size()
        if self._fd >= 0 and TIOCOUTQ is not None:
            try:
                size += struct.unpack("i", fcntl.ioctl(self._fd, TIOCOUTQ, b"\0\0\0\0"))[0]
            except OSError:
                self._fd = -1  # not a TCP socket after all: the buffer alone will do
        return size

    def _check(self) -> None:
        if self._transport.is_closing():
            return
        if self._writing:
            now = self._loop.time()
            unsent = self._unsent()
            if self._last is not None and unsent < self._last:
                self._since = now
            self._last = unsent
            if now - self._since >= self.timeout:
                # logged here: the handler may be cancelled by the abort (aiohttp's handler_cancellation)
                log.warning("client %s took nothing of %s for %gs (limits.send_timeout): connection closed",
                            self.client or "-", self.what, self.timeout)
                self._transport.abort()
                return
        self._timer = self._loop.call_later(self._poll, self._check)


def _fileno(transport: asyncio.Transport) -> int:
    sock = transport.get_extra_info("socket")  # TLS transports hand out the TCP socket below them
    try:
        return int(sock.fileno()) if sock is not None else -1
    except (OSError, ValueError):
        return -1


async def _request_body(request: web.Request, stall: float) -> AsyncIterator[bytes]:
    """The client's body, chunk by chunk; a gap longer than ``stall`` seconds ends it.

    A stalled upload would otherwise hold a client connection, a backend
    connection and a registry upload session for as long as the client likes.
    """
    try:
        while True:
            async with asyncio.timeout(stall):
                chunk = await request.content.read(CHUNK)
            if not chunk:
                return
            yield chunk
    except TimeoutError as exc:
        log.warning("%s %s: upload stalled for %gs; aborted", request.method, request.path, stall)
        raise ClientGone("client upload stalled") from exc
    except (aiohttp.ClientPayloadError, ConnectionError, asyncio.IncompleteReadError) as exc:
        raise ClientGone("client upload ended early") from exc


async def forward(request: web.Request, upstream: Upstream, origin: Origin,
                  tee: Tee | None = None) -> web.StreamResponse:
    """Send the request to the backend and stream its answer back; raises ProxyError before the answer starts.

    ``tee``, if given, is shown the answer's status and headers and may
    return a :class:`Sink`: the body is then read whole from the backend
    (the tee only asks for bodies within ``cache.max_item``), given to
    the sink, and sent.
    """
    headers = upstream_headers(
        request.headers,
        host=origin.host,
        proto=origin.scheme,
        client_ip=origin.client_ip,
        content_length=request.content_length,
    )
    url = URL(upstream.origin + request.raw_path, encoded=True)
    async with upstream.slot(request, origin.client_ip):
        body = _request_body(request, upstream.body_timeout) if request.body_exists else None
        try:
            backend = await upstream.session.request(
                request.method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                read_bufsize=upstream.budget.size(),  # the reader pauses the socket at twice this
            )
        except ClientGone:
            raise
        except aiohttp.ConnectionTimeoutError as exc:  # before TimeoutError: it is one, but means unreachable
            raise _unreachable(upstream, exc, request) from None
        except TimeoutError:
            # logged once per outage by the upstream's health, per request at DEBUG
            upstream.health.silent(upstream.session.timeout.sock_read, f"{request.method} {request.path}")
            raise ProxyError(504, "UNAVAILABLE", "the registry behind this proxy did not answer in time") from None
        except aiohttp.ClientError as exc:
            if request.transport is None or request.transport.is_closing() or _caused_by_client(exc):
                raise ClientGone("client left or stalled during the upload") from exc
            raise _unreachable(upstream, exc, request) from None
        upstream.health.answered()  # logs "reachable again" once after an outage
        async with backend:
            with upstream.budget.transfer():
                return await _relay(request, backend, upstream, origin, tee)


def _unreachable(upstream: Upstream, exc: BaseException, request: web.Request) -> ProxyError:
    upstream.health.unreachable(exc, f"{request.method} {request.path}")  # one WARNING per outage, with errno
    return ProxyError(502, "UNAVAILABLE", "the registry behind this proxy is unreachable; try again later")


async def _relay(
    request: web.Request, backend: aiohttp.ClientResponse, upstream: Upstream, origin: Origin, tee: Tee | None
) -> web.StreamResponse:
    response = web.StreamResponse(
        status=backend.status,
        reason=backend.reason,
        headers=downstream_headers(backend.headers, backend_origin=upstream.origin,
                                   public_origin=f"{origin.scheme}://{origin.host}"),
    )
    if backend.content_length is not None:
        response.content_length = backend.content_length
    sink = tee(backend.status, response.headers, backend.content_length) if tee is not None else None
    watch: SendWatch | None = None
    try:
        await response.prepare(request)
        if request.method == "HEAD" or request.transport is None:
            return response
        watch = SendWatch(request.transport, upstream.send_timeout, origin.client_ip,
                          f"{request.method} {request.path}")
        if sink is not None:  # a body the cache keeps (<= cache.max_item): whole first, so that requests
            whole = await backend.read()  # waiting for it are not held up by this client's pace
            sink.add(whole)
            sink.done()
            await watch.send(response.write(whole))
        else:
            connection = backend.connection
            transport = connection.transport if connection is not None else None
            # sized afresh per chunk: a transfer that started alone shrinks when a storm arrives
            while chunk := await backend.content.read(upstream.budget.fit(transport)):
                await watch.send(response.write(chunk))
        await watch.send(response.write_eof())
    except (ConnectionError, aiohttp.ClientConnectionResetError):
        _abort(request)  # the client left or was cut off (SendWatch logged it); nothing to tell it
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.warning("backend stream for %s %s broke: %s", request.method, request.path, exc.__class__.__name__)
        _abort(request)
    finally:
        if watch is not None:
            watch.close()
        if sink is not None:
            sink.close()
    return response


def _caused_by_client(exc: BaseException) -> bool:
    """aiohttp wraps an error raised by the body generator (a stall) in a ClientError: look inside."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            return False
        if isinstance(seen, ClientGone):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _abort(request: web.Request) -> None:
    """Close the client connection without ending the body: a short body must look short."""
    if request.transport is not None:
        request.transport.abort()
