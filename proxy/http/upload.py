"""Requests with a body (uploads): aiohttp's client streams the client's body to the backend as it arrives.

Everything without a body takes the lean client instead
(:mod:`proxy.http.backend`); an upload's cost is its bytes, not its
request, so aiohttp's machinery costs nothing worth saving here, and it
already does what a body needs (backpressure both ways, an answer that
arrives before the body ends).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from proxy.http.backend import BackendBroken
from proxy.http.upstream import ClientGone, Upstream, silent, unreachable

__all__ = ["CHUNK", "open_upload"]

log = logging.getLogger("proxy.http.forward")

CHUNK = 256 * 1024


class _UploadAnswer:
    """aiohttp's answer to an upload, seen as a :class:`BackendAnswer`; its errors become BackendBroken."""

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status, self.reason, self.headers = response.status, response.reason or "", response.headers
        self.content_length = response.content_length

    @property
    def transport(self) -> asyncio.BaseTransport | None:
        connection = self._response.connection
        return connection.transport if connection is not None else None

    async def read_chunk(self, limit: int) -> bytes:
        try:
            return await self._response.content.read(limit)
        except aiohttp.ClientError as exc:
            raise BackendBroken(exc.__class__.__name__) from exc

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except aiohttp.ClientError as exc:
            raise BackendBroken(exc.__class__.__name__) from exc


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


@asynccontextmanager
async def open_upload(request: web.Request, upstream: Upstream,
                      headers: CIMultiDict[str]) -> AsyncIterator[_UploadAnswer]:
    """Send the request and its body; yields the backend's answer (raises ProxyError or ClientGone before it)."""
    url = URL(upstream.origin + request.raw_path, encoded=True)
    what = f"{request.method} {request.path}"
    body = _request_body(request, upstream.body_timeout)
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
        raise unreachable(upstream, exc, what) from None
    except TimeoutError:
        raise silent(upstream, what) from None
    except aiohttp.ClientError as exc:
        if request.transport is None or request.transport.is_closing() or _caused_by_client(exc):
            raise ClientGone("client left or stalled during the upload") from exc
        raise unreachable(upstream, exc, what) from None
    upstream.health.answered()
    async with backend:
        yield _UploadAnswer(backend)


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
