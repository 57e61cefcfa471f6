"""The streaming forwarder: bytes pass through untouched, in both directions.

Memory must not grow with blob size, so bodies are relayed chunk by chunk
with backpressure (``await write`` waits for the socket). Before the
answer starts, failures are a :class:`~auth.errors.ProxyError` (503 busy,
502 unreachable, 504 silent: :mod:`proxy.http.upstream`); after it starts,
the client connection is aborted so a truncated body is never mistaken for
a complete one. A client that takes none of a response for
``limits.send_timeout`` seconds is cut off (:class:`SendWatch`), which
frees its slot and its backend connection.

Requests without a body (every pull) go through the lean client
(:mod:`proxy.http.backend`), uploads through aiohttp's
(:mod:`proxy.http.upload`); both answers are relayed by the same code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from auth.decision import Origin
from auth.errors import ProxyError
from proxy.http.backend import BackendBroken
from proxy.http.headers import downstream_headers, upstream_headers
from proxy.http.sendwatch import SendWatch
from proxy.http.upload import CHUNK, open_upload
from proxy.http.upstream import ClientGone, Upstream, silent, unreachable

__all__ = ["CHUNK", "BackendAnswer", "ClientGone", "Sink", "Tee", "forward"]

log = logging.getLogger(__name__)

DISCARD_MAX = 64 << 10  # a body this small, asked for but not sent on, is read so its connection can be reused


class Sink(Protocol):
    """A copy of a forwarded body, read whole (``proxy.http.cache`` keeps small ones by digest)."""

    def add(self, chunk: bytes) -> None: ...
    def done(self) -> bool: ...  # the whole body arrived
    def close(self) -> None: ...  # always called last, whether or not it arrived


Tee = Callable[[int, CIMultiDict[str], int | None], Sink | None]  # (status, headers, length) -> a sink or None


class BackendAnswer(Protocol):
    """What the relay reads: :class:`proxy.http.backend.Answer`, or aiohttp's answer to an upload."""

    status: int
    reason: str
    headers: CIMultiDict[str] | CIMultiDictProxy[str]
    content_length: int | None

    @property
    def transport(self) -> asyncio.BaseTransport | None: ...
    async def read_chunk(self, limit: int) -> bytes: ...
    async def read(self) -> bytes: ...


async def forward(request: web.Request, upstream: Upstream, origin: Origin,
                  tee: Tee | None = None, method: str | None = None) -> web.StreamResponse:
    """Send the request to the backend and stream its answer back; raises ProxyError before the answer starts.

    Requests without a body (every pull) take the lean client
    (:mod:`proxy.http.backend`); uploads take aiohttp's, which
    streams the client's body. ``tee``, if given, is shown the answer's
    status and headers and may return a :class:`Sink`: the body is then
    read whole from the backend (the tee only asks for bodies within
    ``cache.max_item``), given to the sink, and sent. ``method``, if
    given, is sent instead of the client's: the cache asks for a ``GET``
    when a ``HEAD`` misses, to fill itself; the client still gets no body.
    """
    headers = upstream_headers(
        request.headers,
        host=origin.host,
        proto=origin.scheme,
        client_ip=origin.client_ip,
        content_length=request.content_length,
    )
    async with upstream.slot(request, origin.client_ip):
        if request.body_exists:
            async with open_upload(request, upstream, headers) as uploaded:
                with upstream.budget.transfer():
                    return await _relay(request, uploaded, upstream, origin, tee)
        try:
            answer = await upstream.wire.request(method or request.method, request.raw_path, headers,
                                                 2 * upstream.budget.size())
        except ValueError:
            raise ProxyError(400, "UNSUPPORTED", "a header holds a line break") from None
        except TimeoutError:
            raise silent(upstream, f"{request.method} {request.path}") from None
        except (OSError, BackendBroken) as exc:
            raise unreachable(upstream, exc, f"{request.method} {request.path}") from None
        upstream.health.answered()  # logs "reachable again" once after an outage
        try:
            with upstream.budget.transfer():
                return await _relay(request, answer, upstream, origin, tee)
        finally:
            answer.release()


async def _relay(
    request: web.Request, backend: BackendAnswer, upstream: Upstream, origin: Origin, tee: Tee | None
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
        if request.method == "HEAD" and tee is not None:  # a GET sent to fill the cache: keep, do not send
            if sink is not None:
                sink.add(await backend.read())
                sink.done()
            elif backend.content_length is not None and backend.content_length <= DISCARD_MAX:
                await backend.read()  # a refusal's few bytes (404): read, the backend connection stays reusable
            return response
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
            # sized afresh per chunk: a transfer that started alone shrinks when a storm arrives
            while chunk := await backend.read_chunk(upstream.budget.fit(backend.transport)):
                await watch.send(response.write(chunk))
        await watch.send(response.write_eof())
    except ConnectionError:
        _abort(request)  # the client left or was cut off (SendWatch logged it); nothing to tell it
    except (TimeoutError, BackendBroken) as exc:
        log.warning("backend stream for %s %s broke: %s", request.method, request.path, exc.__class__.__name__)
        _abort(request)
    finally:
        if watch is not None:
            watch.close()
        if sink is not None:
            sink.close()
    return response


def _abort(request: web.Request) -> None:
    """Close the client connection without ending the body: a short body must look short."""
    if request.transport is not None:
        request.transport.abort()
