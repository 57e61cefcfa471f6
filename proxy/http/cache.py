"""Manifests and small blobs by digest, answered from memory: the transport half of ``auth.digestcache``.

The request path asks two things, always *after* the gate has let the
request through (so a caller who may not pull is refused exactly as
before, and the cache never sees that request):

- :meth:`ResponseCache.key`: is this content by digest that memory may
  serve? Only ``GET``/``HEAD`` (and ``DELETE``, to evict) of
  ``manifests/<digest>`` or ``blobs/<digest>``, without a query string,
  ``Range`` or a conditional header; never a tag.
- :meth:`ResponseCache.serve`: the answer from memory, with the headers the
  proxy would have sent (the registry's, ``Date`` made fresh, the version
  header and ``Server`` added once by the app as on every answer), or the
  forwarder's answer, of which a ``GET``'s good 200 is kept once it hashes
  to its digest. A ``HEAD`` is answered from what a ``GET`` filled; a
  manifest ``HEAD`` that misses is sent as a ``GET`` and fills it (its
  client still gets headers only), so a HEAD-only client such as a
  ``workers: 2`` replica checking digests warms the cache too.

A storm of clients asking for the same digest at once makes one backend
request, not one each: while a ``GET`` fills a key, the others wait for it
(at most :data:`FILL_WAIT` seconds, then they ask the registry themselves).
The filling ``GET`` reads the body whole before sending it (it is at most
``cache.max_item``), so the waiters are not held up by that one client's
pace.

A ``DELETE`` the registry accepted (202) evicts that digest in that
repository; with ``workers`` > 1, :attr:`ResponseCache.on_evict` has every other
worker evict it too (``proxy.server.workers.evict``); ``gc`` clears
everything through the admin listener;
``cache.ttl`` bounds how long a change made behind the proxy's back can go
unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from auth.digestcache import KINDS, CacheCounters, DigestCache, Entry, Fill, Key, cache_digest
from auth.routes import Route
from proxy.config.model import CacheConfig
from proxy.http.forward import CHUNK, Tee
from proxy.http.sendwatch import SendWatch

__all__ = ["CONDITIONAL", "FILL_WAIT", "SMALL", "Forward", "ResponseCache"]

# a request with any of these is forwarded: the registry answers them (206, 304, 412), memory does not
CONDITIONAL = ("Range", "If-Range", "If-None-Match", "If-Match", "If-Modified-Since", "If-Unmodified-Since")
SMALL = 64 * 1024  # a body this small goes to the transport in one write; larger ones under the send watch
FILL_WAIT = 5.0  # seconds a request waits for another's fill of the same digest (nginx's proxy_cache_lock)
_FRESH = frozenset({"date", "content-length"})  # made for each answer, never replayed
_METHODS = frozenset({"GET", "HEAD", "DELETE"})

Forward = Callable[[Tee | None, str | None], Awaitable[web.StreamResponse]]  # forwarder(tee, method), bound


class ResponseCache:
    """One per runtime; a reload keeps it unless the ``cache`` settings changed."""

    def __init__(self, config: CacheConfig, counters: CacheCounters, send_timeout: float) -> None:
        self.config = config
        self.store = DigestCache(config.max_bytes, config.max_item, config.ttl, counters)
        self.store.on_settled = self._settled
        self.send_timeout = send_timeout
        self._fills: dict[Key, asyncio.Event] = {}  # a GET filling this key; set when its fill ended
        # told of each DELETE accepted here: with ``workers`` > 1 the other workers' caches must forget it too
        self.on_evict: Callable[[Key], None] | None = None

    def key(self, request: web.Request, route: Route) -> Key | None:
        """``(repository, kind, digest)`` when memory may answer (or a ``DELETE`` evict) this request."""
        if not self.store.enabled or route.kind not in KINDS or request.method not in _METHODS:
            return None
        path, query, _ = request.raw_path.partition("?")
        digest = cache_digest(path.rpartition("/")[2])
        if digest is None or route.name is None:
            return None
        if request.method != "DELETE" and (query or any(name in request.headers for name in CONDITIONAL)):
            return None  # a DELETE evicts whatever it carries: the registry deletes by the path alone
        return (route.name, route.kind, digest)

    async def serve(self, request: web.Request, key: Key, client_ip: str, forward: Forward) -> web.StreamResponse:
        """Answer from memory, or forward (keeping a ``GET``'s good answer); a ``DELETE`` accepted evicts."""
        if request.method == "DELETE":
            response = await forward(None, None)
            if response.status == 202:
                self.store.evict(key[0], key[2])
                if self.on_evict is not None:
                    self.on_evict(key)
            return response
        accept = request.headers.getall("Accept", ())
        entry = self.store.get(key, accept, count=False)
        wait = self._fills.get(key) if entry is None else None
        if wait is not None:  # another request is filling it: its answer is ours in a moment
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FILL_WAIT):
                    await wait.wait()
            entry = self.store.get(key, accept, count=False)
        self.store.tally(entry is not None)
        if entry is not None:
            return await self._answer(request, entry, client_ip)
        fills = request.method == "GET" or (request.method == "HEAD" and key[1] == "manifest")
        if not fills or key in self._fills:
            return await forward(None, None)
        event = self._fills[key] = asyncio.Event()
        try:  # a manifest HEAD asks for the GET it will be asked next (a blob HEAD may be gigabytes: not that)
            return await forward(_Tee(self.store, key), "GET")
        finally:
            event.set()  # also when no fill began (a 404, an error): nobody waits in vain
            if self._fills.get(key) is event:
                del self._fills[key]

    def clear(self) -> int:
        return self.store.clear()

    def _settled(self, key: Key) -> None:
        event = self._fills.get(key)
        if event is not None:
            event.set()

    async def _answer(self, request: web.Request, entry: Entry, client_ip: str) -> web.StreamResponse:
        if request.method == "HEAD" or len(entry.body) <= SMALL:
            return web.Response(status=200, body=entry.body, headers=CIMultiDict(entry.headers))
        return await _stream(request, entry, self.send_timeout, client_ip)


class _Tee:
    """Called by the forwarder with the answer's status and headers: a :class:`Fill` if it is worth a copy."""

    __slots__ = ("_key", "_store")

    def __init__(self, store: DigestCache, key: Key) -> None:
        self._store = store
        self._key = key

    def __call__(self, status: int, headers: CIMultiDict[str] | CIMultiDictProxy[str],
                 length: int | None) -> Fill | None:
        kept = tuple((k, v) for k, v in headers.items() if k.lower() not in _FRESH)
        return self._store.begin(self._key, status, kept, length)


async def _stream(request: web.Request, entry: Entry, send_timeout: float, client_ip: str) -> web.StreamResponse:
    """A larger body (a config up to ``max_item``) under the same send watch as a forwarded one."""
    response = web.StreamResponse(status=200, headers=CIMultiDict(entry.headers))
    response.content_length = len(entry.body)
    await response.prepare(request)
    if request.transport is None:
        return response
    watch = SendWatch(request.transport, send_timeout, client_ip, f"{request.method} {request.path}")
    body = memoryview(entry.body)
    try:
        for start in range(0, len(body), CHUNK):  # a chunk at a time: one client buffers a chunk, not the body
            await watch.send(response.write(body[start:start + CHUNK]))
        await watch.send(response.write_eof())
    except ConnectionError:
        if request.transport is not None:
            request.transport.abort()  # a short body must look short
    finally:
        watch.close()
    return response
