"""Differential OCI conformance: one request, sent to the bare registry and through the proxy.

The proxy's promise is "never worse than the registry behind it", so the
registry is the reference rather than a hand-written expectation: every
spec request goes to both, each side in its own repository namespace
(``conf/<hex>/...``, the same length on both sides, so bodies that name the
repository keep their size), and the answers must match in status, error
code, the headers the spec names and, for successful reads, the body.
Follow-up requests are built from each side's own ``Location``, as a client
must. Where the proxy answers differently on purpose, the test states that
difference explicitly (a :class:`Difference` row) instead of asserting
equality.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.support.authz import MARK, token_from
from tests.support.httpclient import Client, Reply
from tests.support.registry import Registry
from tests.support.tap import Tap

__all__ = ["API_VERSION", "OCI_MANIFEST", "OCTET", "Difference", "Exchange", "Image", "Pair", "Side",
           "differential", "error_code", "sha256"]

API_VERSION = "Docker-Distribution-Api-Version"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCTET = [("Content-Type", "application/octet-stream")]
# Compared by value on every success (Docker-Upload-UUID differs per upload: only its presence is).
SPEC_HEADERS = ("Docker-Content-Digest", "Content-Length", "Content-Type", "Content-Range", "Range")
_UPLOAD_ID = re.compile(r"(/blobs/uploads/)[^/]+$")  # the last one: a name may contain it too


def error_code(reply: Reply) -> str | None:
    """``errors[0].code`` of a JSON error body; None for anything else (a router's text 404, a HEAD)."""
    try:
        return str(reply.json()["errors"][0]["code"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Image:
    """A config blob, one layer and the OCI manifest over them: identical bytes for both sides."""

    config: bytes
    layer: bytes
    manifest: bytes

    @classmethod
    def make(cls, layer_size: int = 3000, missing_layer: bool = False) -> Image:
        config = json.dumps({"architecture": "amd64", "os": "linux", "nonce": os.urandom(8).hex(),
                             "rootfs": {"type": "layers", "diff_ids": []}}).encode()
        layer = os.urandom(layer_size)
        ldigest = sha256(os.urandom(32)) if missing_layer else sha256(layer)
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha256(config),
                       "size": len(config)},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ldigest,
                        "size": len(layer)}],
        }).encode()
        return cls(config, layer, manifest)

    @property
    def digest(self) -> str:
        return sha256(self.manifest)


class _Names(dict[str, str]):
    """``str.format_map`` values: explicit ones first; any other field is a repository under the prefix."""

    def __init__(self, prefix: str, values: Mapping[str, str]) -> None:
        super().__init__(values)
        self.prefix = prefix

    def __missing__(self, key: str) -> str:
        return f"{self.prefix}/{key}"


@dataclass
class Side:
    """One way to the registry: direct (mode "none"), or through the proxy with Basic or Bearer auth.

    A Bearer side does what a registry client does: it sends the token it
    holds and, on a 401, asks the challenge's realm for exactly the scopes
    the challenge names (as mark), then retries once. Every answer is kept,
    challenges included, so header checks cover all of them.
    """

    name: str
    client: Client
    origin: str
    mode: str
    prefix: str = field(default_factory=lambda: f"conf/{os.urandom(6).hex()}")
    token: str | None = None
    replies: list[Reply] = field(default_factory=list)

    def path(self, template: str, **values: str) -> str:
        return template.format_map(_Names(self.prefix, values))

    def _auth(self) -> list[tuple[str, str]]:
        if self.mode == "basic":
            return [("Authorization", MARK)]
        if self.mode == "bearer" and self.token is not None:
            return [("Authorization", f"Bearer {self.token}")]
        return []

    def send(self, method: str, path: str, headers: Iterable[tuple[str, str]] = (),
             body: bytes | None = None) -> Reply:
        headers = list(headers)
        reply = self.client.request(method, path, [*self._auth(), *headers], body)
        challenge = reply.header("WWW-Authenticate") or ""
        if reply.status == 401 and self.mode == "bearer" and challenge.startswith("Bearer "):
            self.replies.append(reply)
            self.token = token_from(self.client, challenge, MARK)
            reply = self.client.request(method, path, [*self._auth(), *headers], body)
        self.replies.append(reply)
        return reply

    def _check_origin(self, url: str) -> Any:
        """Split ``url``; its origin must be this side's own or absent (never the backend's, via the proxy)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""
        assert origin in ("", self.origin), f"{self.name}: {url!r} is not on {self.origin}"
        return parts

    def normal_location(self, reply: Reply) -> str | None:
        """``Location`` with origin, prefix, upload id and query values made neutral (None if absent)."""
        location = reply.header("Location")
        if location is None:
            return None
        parts = self._check_origin(location)
        path = _UPLOAD_ID.sub(r"\1{uuid}", parts.path.replace(self.prefix, "{prefix}"))
        keys = sorted({k for k, _ in parse_qsl(parts.query, keep_blank_values=True)})
        return path + ("?" + "&".join(keys) if keys else "")

    def normal_link(self, reply: Reply) -> str | None:
        """``Link: <url>; rel="next"`` with origin and prefix made neutral (None if absent)."""
        link = reply.header("Link")
        if link is None:
            return None
        match = re.fullmatch(r"<([^>]*)>(.*)", link)
        assert match is not None, f"{self.name}: malformed Link {link!r}"
        parts = self._check_origin(match[1])
        return f"{parts.path.replace(self.prefix, '{prefix}')}?{parts.query}{match[2]}"

    def link_path(self, reply: Reply) -> str:
        """Path and query of the next page ``reply``'s Link names."""
        link = reply.header("Link") or ""
        match = re.match(r"<([^>]*)>", link)
        assert match is not None, f"{self.name}: no Link in {reply.status} {reply.headers}"
        parts = urlsplit(match[1])
        return parts.path + (f"?{parts.query}" if parts.query else "")

    def location_path(self, reply: Reply, extra_query: str = "") -> str:
        """Path and query of ``reply``'s Location, with ``extra_query`` appended (``digest=...``)."""
        location = reply.header("Location")
        assert location is not None, f"{self.name}: no Location in {reply.status} {reply.headers}"
        parts = urlsplit(location)
        query = "&".join(q for q in (parts.query, extra_query) if q)
        return parts.path + (f"?{query}" if query else "")


@dataclass
class Exchange:
    """The registry's and the proxy's answers to the same request."""

    reg: Reply
    prx: Reply
    pair: Pair

    def locations(self, extra_query: str = "") -> dict[str, str]:
        """Each side's own Location (path and query), for the next request of a flow."""
        return {"registry": self.pair.reg.location_path(self.reg, extra_query),
                "proxy": self.pair.prx.location_path(self.prx, extra_query)}

    def links(self) -> dict[str, str]:
        """Each side's own next-page Link (path and query)."""
        return {"registry": self.pair.reg.link_path(self.reg), "proxy": self.pair.prx.link_path(self.prx)}

    def describe(self) -> str:
        return (f"registry {self.reg.status} {self.reg.body[:300]!r}\n"
                f"proxy    {self.prx.status} {self.prx.body[:300]!r}")


@dataclass(frozen=True)
class Difference:
    """A request the proxy answers itself, on purpose, unlike the registry; ``why`` says why."""

    method: str
    path: str  # template, as for Pair.both
    registry: tuple[int, str | None]  # status, errors[0].code (None: not a JSON error, e.g. the router's text)
    proxy: tuple[int, str | None]  # (a HEAD has no body: its codes are None)
    why: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None


@dataclass
class Pair:
    """The reference (the bare registry) and the subject (the proxy in front of it, behind a tap)."""

    reg: Side
    prx: Side
    tap: Tap

    def both(self, method: str, path: str | Mapping[str, str], headers: Iterable[tuple[str, str]] = (),
             body: bytes | None = None, **values: str) -> Exchange:
        """One request to each side; ``path`` is a template (``{app}`` names a repository) or one per side."""
        headers = list(headers)
        replies = []
        for side in (self.reg, self.prx):
            target = path[side.name] if isinstance(path, Mapping) else side.path(path, **values)
            replies.append(side.send(method, target, headers, body))
        return Exchange(replies[0], replies[1], self)

    def same(self, method: str, path: str | Mapping[str, str], headers: Iterable[tuple[str, str]] = (),
             body: bytes | None = None, *, expect: int | set[int] | None = None, **values: str) -> Exchange:
        """:meth:`both`, then assert the proxy answered as the registry did.

        ``expect`` is what the spec says the registry answers; giving it
        keeps a comparison from passing because both sides failed alike.
        """
        ex = self.both(method, path, headers, body, **values)
        if expect is not None:
            allowed = expect if isinstance(expect, set) else {expect}
            assert ex.reg.status in allowed, f"{method}: the reference registry itself answered\n{ex.describe()}"
        self.assert_same(ex, method)
        return ex

    def assert_same(self, ex: Exchange, method: str) -> None:
        assert len(ex.prx.all(API_VERSION)) == 1, f"proxy headers {ex.prx.headers}"
        assert _view(self.prx, ex.prx, method) == _view(self.reg, ex.reg, method), \
            f"{method}: answers differ (left: proxy)\n{ex.describe()}"

    def differs_as(self, row: Difference) -> None:
        """Assert ``row``: both answers as stated, and the proxy's refusal never reached the registry."""
        self.tap.clear()
        ex = self.both(row.method, row.path, row.headers, row.body)
        got = ((ex.reg.status, error_code(ex.reg)), (ex.prx.status, error_code(ex.prx)))
        assert got == (row.registry, row.proxy), f"{row.method} {row.path} ({row.why})\n{ex.describe()}"
        assert len(ex.prx.all(API_VERSION)) == 1, ex.prx.headers
        assert self.tap.requests() == [], f"{row.method} {row.path} reached the registry: {self.tap.requests()}"

    def push_blob(self, repo: str, data: bytes) -> Exchange:
        """Pushing a blob monolithically, POST then PUT (end-4a, end-6)."""
        start = self.same("POST", f"/v2/{{{repo}}}/blobs/uploads/", body=b"", expect=202)
        return self.same("PUT", start.locations("digest=" + sha256(data)), OCTET, data, expect=201)

    def push_image(self, repo: str, image: Image, tag: str) -> Exchange:
        """Both blobs, then the manifest under ``tag`` (Pushing Manifests, end-7)."""
        self.push_blob(repo, image.config)
        self.push_blob(repo, image.layer)
        return self.same("PUT", f"/v2/{{{repo}}}/manifests/{tag}", [("Content-Type", OCI_MANIFEST)],
                         image.manifest, expect=201)

    def bad_version_headers(self) -> list[str]:
        """Proxy answers (challenges included) without exactly one version header: should be none."""
        return [f"{r.status} {r.all(API_VERSION)}" for r in self.prx.replies if len(r.all(API_VERSION)) != 1]


def _view(side: Side, reply: Reply, method: str) -> dict[str, object]:
    """What must match across the sides: status and error code; for a success the spec's headers,
    Location and Link made neutral, whether there is an upload id, and a GET's body."""
    if reply.status >= 400:
        return {"status": reply.status, "code": error_code(reply)}
    view: dict[str, object] = {name: reply.header(name) for name in SPEC_HEADERS}
    view.update(status=reply.status, upload_id=reply.header("Docker-Upload-UUID") is not None,
                location=side.normal_location(reply), link=side.normal_link(reply))
    if method == "GET":
        view["body"] = reply.body.replace(side.prefix.encode(), b"{prefix}")
    return view


@contextmanager
def differential(registry: Registry, proxy_factory: Any, ca_cert: Path, mode: str) -> Iterator[Pair]:
    """The session registry as reference and a proxy (challenge ``mode``) in front of it, behind a tap."""
    tap = Tap(registry.port).start()
    try:
        proxy = proxy_factory(backend=tap.url, challenge=mode)
        pair = Pair(Side("registry", Client(registry.url), registry.url, "none"),
                    Side("proxy", Client(proxy.url, ca_cert), proxy.url, mode), tap)
        yield pair
        assert pair.bad_version_headers() == [], "proxy answers without exactly one version header"
    finally:
        tap.stop()
