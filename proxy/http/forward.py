"""The streaming forwarder: bytes pass through untouched, in both directions.

Memory must not grow with blob size, so bodies are relayed chunk by chunk
with backpressure (``await write`` waits for the socket). Errors are told
apart: before the response starts, a backend that cannot be reached
(refused, or no connection within ``timeouts.connect``) is a 502 and one
that does not answer within ``timeouts.read`` a 504; after it starts, the
client connection is aborted so a truncated body is never mistaken for a
complete one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from yarl import URL

from auth.decision import Origin
from auth.errors import ProxyError
from proxy.http.headers import downstream_headers, upstream_headers

__all__ = ["CHUNK", "ClientGone", "Upstream", "forward"]

log = logging.getLogger(__name__)

CHUNK = 256 * 1024
# Headers aiohttp's client would add on its own; the backend must see only the client's.
SKIP_AUTO = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})


@dataclass(frozen=True)
class Upstream:
    session: aiohttp.ClientSession
    origin: str  # e.g. http://127.0.0.1:5000
    body_timeout: float = 60.0  # an upload that sends nothing for this long is aborted


class ClientGone(Exception):
    """The client went away mid-transfer: not the backend's fault, not a 502."""


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


async def forward(request: web.Request, upstream: Upstream, origin: Origin) -> web.StreamResponse:
    """Send the request to the backend and stream its answer back; raises ProxyError before the answer starts."""
    headers = upstream_headers(
        request.headers,
        host=origin.host,
        proto=origin.scheme,
        client_ip=origin.client_ip,
        content_length=request.content_length,
    )
    body = _request_body(request, upstream.body_timeout) if request.body_exists else None
    url = URL(upstream.origin + request.raw_path, encoded=True)
    try:
        backend = await upstream.session.request(
            request.method,
            url,
            headers=headers,
            data=body,
            allow_redirects=False,
            skip_auto_headers=SKIP_AUTO,
        )
    except ClientGone:
        raise
    except aiohttp.ConnectionTimeoutError as exc:  # before TimeoutError: it is one, but means unreachable
        raise _unreachable(upstream, exc) from None
    except TimeoutError:
        log.warning("backend %s did not answer %s %s in time", upstream.origin, request.method, request.path)
        raise ProxyError(504, "UNAVAILABLE", "the registry behind this proxy did not answer in time") from None
    except aiohttp.ClientError as exc:
        if request.transport is None or request.transport.is_closing() or _caused_by_client(exc):
            raise ClientGone("client left or stalled during the upload") from exc
        raise _unreachable(upstream, exc) from None
    async with backend:
        return await _relay(request, backend, upstream.origin, f"{origin.scheme}://{origin.host}")


def _unreachable(upstream: Upstream, exc: BaseException) -> ProxyError:
    log.warning("backend %s unreachable: %s", upstream.origin, exc.__class__.__name__)
    return ProxyError(502, "UNAVAILABLE", "the registry behind this proxy is unreachable; try again later")


async def _relay(
    request: web.Request, backend: aiohttp.ClientResponse, backend_origin: str, public_origin: str
) -> web.StreamResponse:
    response = web.StreamResponse(
        status=backend.status,
        reason=backend.reason,
        headers=downstream_headers(backend.headers, backend_origin=backend_origin, public_origin=public_origin),
    )
    if backend.content_length is not None:
        response.content_length = backend.content_length
    try:
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        async for chunk in backend.content.iter_chunked(CHUNK):
            await response.write(chunk)
    except (ConnectionError, aiohttp.ClientConnectionResetError):
        _abort(request)  # the client left; nothing to tell it
        return response
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.warning("backend stream for %s %s broke: %s", request.method, request.path, exc.__class__.__name__)
        _abort(request)
        return response
    await response.write_eof()
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
