"""The catalog's reads (and its one write) against the registry: no client credentials, bounded, cached.

Every request goes through the same backend pool and slots as forwarded
traffic (``Upstream.slot``), carries nothing of the browser's (no cookie, no
``Authorization``: the proxy judged the visitor, the registry trusts the
proxy), has a time limit, and reads at most a fixed number of bytes. A
manifest or config fetched by digest is checked against that digest and
then kept in the :class:`~proxy.ui.cache.ByteLRU`; tags are mutable and are
resolved (``HEAD``) on every page view.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar, cast

import aiohttp
from aiohttp import web
from yarl import URL

from auth.catalog import CatalogWalk, PageError, Paging, parse_page
from auth.errors import ProxyError
from auth.names import valid_digest, valid_tag
from proxy.http.upstream import SKIP_AUTO, Upstream
from proxy.ui.cache import ByteLRU
from proxy.ui.images import MANIFEST_ACCEPT, ImageConfig, Manifest, ManifestError, parse_config, parse_manifest

__all__ = ["CATALOG_PAGE", "MAX_WALKS", "CatalogList", "RegistryReader"]

log = logging.getLogger(__name__)
T = TypeVar("T")

CATALOG_PAGE = 1000  # names per backend catalog request: distribution's default catalog.maxentries
MAX_WALKS = 10  # CatalogWalks per page view (each at most auth.catalog.MAX_PAGES backend pages)
MAX_LIST = 8 * 1024 * 1024  # a catalog or tag list page
MAX_MANIFEST = 4 * 1024 * 1024  # distribution refuses bigger manifests
MAX_CONFIG = 8 * 1024 * 1024
CONCURRENCY = 8  # backend requests in flight for one page view
TIMEOUT = 30.0  # one backend request, at most (a page must not hang for timeouts.read)
_NEXT = re.compile(r'rel="?next"?', re.IGNORECASE)
DELETE_DISABLED = ("the registry refuses deletes: start it with REGISTRY_STORAGE_DELETE_ENABLED=true "
                   "(storage: {delete: {enabled: true}} in its config.yml), then try again")


@dataclass(frozen=True)
class CatalogList:
    names: list[str]
    truncated: bool  # the walk stopped at MAX_WALKS: more names may exist


def _matches(digest: str, body: bytes) -> bool:
    algorithm, _, encoded = digest.partition(":")
    return algorithm in ("sha256", "sha512") and hashlib.new(algorithm, body).hexdigest() == encoded


class RegistryReader:
    """One page view's access to the backend (``cache`` is the app's, shared by every view)."""

    def __init__(self, upstream: Upstream, cache: ByteLRU, request: web.Request, client_ip: str,
                 timeout: float = TIMEOUT) -> None:
        self.upstream = upstream
        self.cache = cache
        self.request = request
        self.client_ip = client_ip
        self.timeout = timeout
        self._gate = asyncio.Semaphore(CONCURRENCY)
        self._once: dict[tuple[str, ...], asyncio.Task[object]] = {}  # one fetch per digest per page view

    def _shared(self, key: tuple[str, ...], fetch: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """The same task for every part of this page asking for ``key``: two tags, one GET."""
        task = self._once.get(key)
        if task is None:
            task = asyncio.ensure_future(fetch())
            self._once[key] = task
        return cast("asyncio.Task[T]", task)

    def close(self) -> None:
        """End the page view: cancel fetches nobody waits for any more (a sibling failed), collect errors."""
        for task in self._once.values():
            if not task.done():
                task.cancel()
            elif not task.cancelled():
                task.exception()  # retrieved: no "exception was never retrieved" at garbage collection

    async def _call(self, method: str, path: str, *, cap: int, accept: str | None = None,
                    follow: bool = False) -> tuple[int, dict[str, str], bytes]:
        """Status, the headers this module reads, and the body (empty for HEAD); ProxyError 502/504."""
        headers = {"Accept-Encoding": "identity", "User-Agent": "registry-auth-proxy-ui",
                   "X-Forwarded-For": self.client_ip}
        if accept is not None:
            headers["Accept"] = accept
        url = URL(self.upstream.origin + path, encoded=True)
        async with self._gate, self.upstream.slot(self.request, self.client_ip):
            try:
                async with asyncio.timeout(self.timeout), self.upstream.session.request(
                        method, url, headers=headers, allow_redirects=follow, max_redirects=3,
                        skip_auto_headers=SKIP_AUTO) as backend:
                    body = b"" if method == "HEAD" else await _read_capped(backend, cap, path)
                    kept = {k: backend.headers.get(k, "") for k in ("Docker-Content-Digest", "Link", "Content-Type")}
                    return backend.status, kept, body
            except aiohttp.ConnectionTimeoutError as exc:
                raise _unreachable(self.upstream, exc) from None
            except TimeoutError:
                log.warning("backend %s did not answer %s %s in time (ui)", self.upstream.origin, method, path)
                raise ProxyError(504, "UNAVAILABLE", "the registry behind this proxy did not answer in time")\
                    from None
            except aiohttp.ClientError as exc:
                raise _unreachable(self.upstream, exc) from None

    # -- lists ----------------------------------------------------------------------------
    async def catalog(self, visible: Callable[[str], bool]) -> CatalogList:
        """Every name ``visible`` admits, walked as ``GET /v2/_catalog`` walks (``auth.catalog``)."""
        found: list[str] = []
        last: str | None = None
        n_given = True
        walks = 0
        while walks < MAX_WALKS:
            walk = CatalogWalk(Paging(n=CATALOG_PAGE, last=last, n_given=n_given), visible)
            while (path := walk.query()) is not None:
                status, headers, body = await self._call("GET", path, cap=MAX_LIST)
                if status == 400 and n_given:  # a catalog.maxentries under 1000: use the backend's page size
                    break
                if status != 200:
                    raise _unexpected(status, "the catalog")
                try:
                    names = parse_page(body)
                except PageError:
                    raise ProxyError(502, "UNAVAILABLE", "the registry sent a catalog page this proxy cannot "
                                     "read") from None
                walk.feed(names, bool(_NEXT.search(headers["Link"])))
            else:
                answer = walk.answer()
                found.extend(answer.repositories)
                if answer.next_last is None:
                    return CatalogList(found, False)
                last = answer.next_last
                walks += 1
                continue
            n_given = False  # the 400 above: start again without n
        return CatalogList(found, True)

    async def tags(self, name: str) -> list[str] | None:
        """The repository's tags (unsorted); None when the registry does not know the repository."""
        status, _, body = await self._call("GET", f"/v2/{name}/tags/list", cap=MAX_LIST)
        if status == 404:
            return None
        if status != 200:
            raise _unexpected(status, "a tag list")
        try:
            tags = json.loads(body).get("tags") or []
        except (ValueError, AttributeError, UnicodeDecodeError):
            raise ProxyError(502, "UNAVAILABLE", "the registry sent a tag list this proxy cannot read") from None
        return [t for t in tags if isinstance(t, str) and valid_tag(t)] if isinstance(tags, list) else []

    # -- manifests ------------------------------------------------------------------------
    async def resolve(self, name: str, reference: str) -> str | None:
        """The digest a tag (or digest) points at now: one HEAD, never cached; None when unknown."""
        status, headers, _ = await self._call("HEAD", f"/v2/{name}/manifests/{reference}", cap=0,
                                              accept=MANIFEST_ACCEPT)
        if status == 404:
            return None
        if status != 200:
            raise _unexpected(status, "a manifest")
        digest = headers["Docker-Content-Digest"]
        if valid_digest(digest):
            return digest
        manifest = await self._fetch_manifest(name, reference, None)  # a backend without the header
        return manifest.digest if manifest else None

    async def manifest(self, name: str, digest: str) -> Manifest | None:
        """The manifest ``digest`` names in ``name``: from the cache, else one checked GET."""
        cached = self.cache.get(("m", name, digest))
        if cached is not None:
            try:
                return parse_manifest(cached, digest)
            except ManifestError:
                return None
        return await self._shared(("m", name, digest), lambda: self._fetch_manifest(name, digest, digest))

    async def _fetch_manifest(self, name: str, reference: str, digest: str | None) -> Manifest | None:
        status, headers, body = await self._call("GET", f"/v2/{name}/manifests/{reference}", cap=MAX_MANIFEST,
                                                 accept=MANIFEST_ACCEPT)
        if status == 404:
            return None
        if status != 200:
            raise _unexpected(status, "a manifest")
        digest = digest or "sha256:" + hashlib.sha256(body).hexdigest()
        if not _matches(digest, body):
            raise ProxyError(502, "UNAVAILABLE", "the registry sent a manifest that does not match its digest")
        self.cache.put(("m", name, digest), body)
        try:
            return parse_manifest(body, digest, headers["Content-Type"])
        except ManifestError:
            return None

    async def config(self, name: str, digest: str) -> ImageConfig | None:
        """An image config blob: from the cache, else one checked GET (following the registry's redirect)."""
        body = self.cache.get(("c", name, digest))
        if body is None:
            body = await self._shared(("c", name, digest), lambda: self._fetch_config(name, digest))
        if body is None:
            return None
        try:
            return parse_config(body)
        except ManifestError:
            return None

    async def _fetch_config(self, name: str, digest: str) -> bytes | None:
        status, _, body = await self._call("GET", f"/v2/{name}/blobs/{digest}", cap=MAX_CONFIG, follow=True)
        if status == 404:
            return None
        if status != 200:
            raise _unexpected(status, "an image config")
        if not _matches(digest, body):
            raise ProxyError(502, "UNAVAILABLE", "the registry sent a config that does not match its digest")
        self.cache.put(("c", name, digest), body)
        return body

    async def delete(self, name: str, digest: str) -> bool:
        """``DELETE`` the manifest (and so every tag on it); False when it was already gone."""
        status, _, _ = await self._call("DELETE", f"/v2/{name}/manifests/{digest}", cap=64 * 1024)
        if status in (200, 202):
            return True
        if status == 404:
            return False
        if status == 405:
            raise ProxyError(405, "UNSUPPORTED", DELETE_DISABLED)
        raise _unexpected(status, "the delete")


async def _read_capped(backend: aiohttp.ClientResponse, cap: int, path: str) -> bytes:
    if backend.content_length is not None and backend.content_length > cap:
        raise _too_big(cap, path)
    chunks: list[bytes] = []
    size = 0
    async for chunk in backend.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise _too_big(cap, path)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_big(cap: int, path: str) -> ProxyError:
    log.warning("backend answer to GET %s is over %d bytes (ui): refused", path, cap)
    return ProxyError(502, "UNAVAILABLE", f"the registry sent more than {cap // (1024 * 1024)} MiB for one "
                      "page element; this page cannot show it")


def _unexpected(status: int, what: str) -> ProxyError:
    if status == 401:
        return ProxyError(502, "UNAVAILABLE", "the registry behind this proxy demands its own login: remove the "
                          "`auth:` section from the registry's config.yml (the proxy does the authentication)")
    return ProxyError(502, "UNAVAILABLE", f"the registry answered HTTP {status} for {what}")


def _unreachable(upstream: Upstream, exc: BaseException) -> ProxyError:
    log.warning("backend %s unreachable (ui): %s", upstream.origin, exc.__class__.__name__)
    return ProxyError(502, "UNAVAILABLE", "the registry behind this proxy is unreachable; try again later")
