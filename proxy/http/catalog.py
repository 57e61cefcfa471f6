"""``GET /v2/_catalog``, filtered by what the caller may pull: the I/O half of ``auth.catalog``.

The registry lists every repository to anyone who may read the catalog; the
proxy must not. So this handler is not a pass-through: it fetches backend
pages (as many as :class:`auth.catalog.CatalogWalk` asks for, a bounded
number), keeps the names :meth:`auth.decision.Policy.may_pull` allows (the
very lookup a pull of that name gets, so the list never shows a name whose
pull would be refused, nor hides one that would work) and writes
distribution's answer itself: the JSON body, and a ``Link`` for the next
page (its ``last`` sealed when it is a name the caller may not see). A
backend refusal (the 400 for ``n`` over ``catalog.maxentries``) is passed
through; a backend that cannot be reached or does not answer gets the same
502/504 as any forwarded request.

Each backend page is read whole to be filtered, so its size is capped: a
catalog page is a few hundred KB at most, and anything over
:data:`MAX_PAGE_BYTES` is a 502 rather than memory the proxy cannot spare.
"""

from __future__ import annotations

import json
import logging
import re

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from auth.access import Identity
from auth.catalog import CatalogWalk, CursorSeal, PageError, parse_page, parse_paging
from auth.decision import Origin
from auth.errors import ProxyError
from proxy.http.headers import upstream_headers
from proxy.http.runtime import Runtime
from proxy.http.upstream import SKIP_AUTO, Upstream

__all__ = ["MAX_PAGE_BYTES", "serve_catalog"]

log = logging.getLogger(__name__)

MAX_PAGE_BYTES = 8 * 1024 * 1024
CONTENT_TYPE = "application/json"  # distribution: application/json; charset=utf-8
_NEXT = re.compile(r'rel="?next"?', re.IGNORECASE)


class _Refused(Exception):
    """The backend answered something other than 200: the client gets that answer as it is."""

    def __init__(self, response: web.Response) -> None:
        super().__init__(response.status)
        self.response = response


async def serve_catalog(request: web.Request, runtime: Runtime, who: Identity | None,
                        origin: Origin) -> web.StreamResponse:
    """The caller's view of the catalog: the backend's pages, minus what ``who`` may not pull."""
    query = request.query
    seal = CursorSeal.from_secret(runtime.token_key)
    paging = parse_paging(query.get("n"), query.get("last"), seal)
    policy = runtime.gate.policy
    walk = CatalogWalk(paging, lambda name: policy.may_pull(who, name, origin))
    headers = upstream_headers(request.headers, host=origin.host, proto=origin.scheme,
                               client_ip=origin.client_ip, content_length=None)
    headers.popall("Accept-Encoding", None)
    headers["Accept-Encoding"] = "identity"  # the page is parsed here; the pool does not decompress
    while (path := walk.query()) is not None:
        try:
            names, more = await _fetch(runtime.upstream, path, headers)
        except _Refused as refused:
            return refused.response
        walk.feed(names, more)
    answer = walk.answer()
    body = json.dumps({"repositories": answer.repositories}, separators=(",", ":")).encode() + b"\n"
    response = web.Response(body=body, content_type=CONTENT_TYPE, charset="utf-8")
    response.headers["Cache-Control"] = "no-store"  # one caller's view: never served to another from a cache
    link = answer.link(paging.n, seal)
    if link is not None:
        response.headers["Link"] = link
    return response


async def _fetch(upstream: Upstream, path: str, headers: CIMultiDict[str]) -> tuple[list[str], bool]:
    """One backend page: its names and whether the backend said there are more (its ``Link``)."""
    url = URL(upstream.origin + path, encoded=True)
    try:
        async with upstream.session.get(url, headers=headers, allow_redirects=False,
                                        skip_auto_headers=SKIP_AUTO) as backend:
            upstream.health.answered()  # logs "reachable again" once after an outage
            body = await _read_capped(backend)
            if backend.status != 200:
                raise _Refused(_passed_through(backend, body))
            more = any(_NEXT.search(value) for value in backend.headers.getall("Link", ()))
    except aiohttp.ConnectionTimeoutError as exc:  # before TimeoutError: it is one, but means unreachable
        raise _unreachable(upstream, exc) from None
    except TimeoutError:
        upstream.health.silent(upstream.session.timeout.sock_read, f"GET {path}")  # logged once per outage
        raise ProxyError(504, "UNAVAILABLE", "the registry behind this proxy did not answer in time") from None
    except aiohttp.ClientError as exc:
        raise _unreachable(upstream, exc) from None
    try:
        return parse_page(body), more
    except PageError as exc:
        log.warning("backend %s: GET %s: %s", upstream.origin, path, exc)
        raise ProxyError(502, "UNAVAILABLE", "the registry behind this proxy sent a catalog page this proxy "
                         "cannot read") from None


async def _read_capped(backend: aiohttp.ClientResponse) -> bytes:
    """The whole body, or a 502 as soon as it is known to exceed :data:`MAX_PAGE_BYTES`."""
    if backend.content_length is not None and backend.content_length > MAX_PAGE_BYTES:
        raise _too_big(backend)
    chunks: list[bytes] = []
    size = 0
    async for chunk in backend.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > MAX_PAGE_BYTES:
            raise _too_big(backend)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_big(backend: aiohttp.ClientResponse) -> ProxyError:
    log.warning("backend catalog page over %d bytes (HTTP %d): refused", MAX_PAGE_BYTES, backend.status)
    return ProxyError(502, "UNAVAILABLE", f"the registry behind this proxy sent a catalog page over "
                      f"{MAX_PAGE_BYTES // (1024 * 1024)} MiB; ask for fewer entries (n)")


def _passed_through(backend: aiohttp.ClientResponse, body: bytes) -> web.Response:
    """The backend's refusal as it sent it: status, body and its Content-Type."""
    response = web.Response(status=backend.status, reason=backend.reason, body=body)
    content_type = backend.headers.get("Content-Type")
    if content_type is not None:
        response.headers["Content-Type"] = content_type
    return response


def _unreachable(upstream: Upstream, exc: BaseException) -> ProxyError:
    """The same answer as :mod:`proxy.http.forward` gives for a backend it cannot reach."""
    upstream.health.unreachable(exc, "GET catalog page")  # one WARNING per outage, with the errno
    return ProxyError(502, "UNAVAILABLE", "the registry behind this proxy is unreachable; try again later")
