"""A fake distribution for the catalog's in-process tests: catalog paging, tags, manifests, blobs, deletes.

It answers like distribution 2.8 for the routes the catalog uses and
records every request, so a test can count what reached the backend (one
manifest and one config GET per digest, no credentials, no cookies).
Its content is whatever a test pushes, hostile strings included.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_ROUTE = re.compile(r"/v2/(?P<name>.+)/(?P<kind>manifests|blobs|tags)/(?P<ref>[^/]+)")


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class FakeDistribution:
    names: list[str] = field(default_factory=list)  # extra catalog names with no content
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # name -> tag -> digest
    manifests: dict[tuple[str, str], tuple[bytes, str]] = field(default_factory=dict)
    blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    delete_enabled: bool = True
    extra_tags: dict[str, list[str]] = field(default_factory=dict)  # listed but not resolvable (hostile)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    # -- content --------------------------------------------------------------------------
    def push_image(self, name: str, tag: str, config: dict[str, Any] | None = None,
                   layers: tuple[int, ...] = (1000,), arch: str = "amd64") -> str:
        body = json.dumps({"architecture": arch, "os": "linux", "created": "2024-05-01T12:34:56.123456789Z",
                           "rootfs": {"type": "layers", "diff_ids": []}, **(config or {})}).encode()
        cdigest = sha(body)
        self.blobs[(name, cdigest)] = body
        descriptors = []
        for i, size in enumerate(layers):
            data = f"{name}:{tag}:{arch}:{i}".encode().ljust(size, b".")[:size]
            self.blobs[(name, sha(data))] = data
            descriptors.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(data),
                                "size": size})
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                          "digest": cdigest, "size": len(body)},
                               "layers": descriptors}).encode()
        return self._put(name, tag, manifest, OCI_MANIFEST)

    def push_index(self, name: str, tag: str, children: dict[str, str]) -> str:
        entries = []
        for platform, digest in children.items():
            os_, arch = platform.split("/")
            raw, _ = self.manifests[(name, digest)]
            entries.append({"mediaType": OCI_MANIFEST, "digest": digest, "size": len(raw),
                            "platform": {"os": os_, "architecture": arch}})
        index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
        return self._put(name, tag, index, OCI_INDEX)

    def _put(self, name: str, tag: str, body: bytes, media_type: str) -> str:
        digest = sha(body)
        self.manifests[(name, digest)] = (body, media_type)
        if tag:
            self.tags.setdefault(name, {})[tag] = digest
        else:
            self.tags.setdefault(name, {})
        return digest

    def count(self, method: str, kind: str) -> int:
        return sum(1 for s in self.seen if s.method == method and f"/{kind}/" in s.path)

    # -- the API ----------------------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.raw_path, {k.lower(): v for k, v in request.headers.items()}))
        path = request.path
        if path == "/v2/_catalog":
            return self._catalog(request)
        match = _ROUTE.fullmatch(path)
        if match is None:
            return web.json_response({}, status=404)
        name, kind, ref = match["name"], match["kind"], match["ref"]
        if name not in self.tags:
            return _error(404, "NAME_UNKNOWN")
        if kind == "tags":
            return web.json_response({"name": name, "tags": [*self.tags[name], *self.extra_tags.get(name, [])]})
        if kind == "blobs":
            blob = self.blobs.get((name, ref))
            return _error(404, "BLOB_UNKNOWN") if blob is None else web.Response(body=blob)
        digest = self.tags[name].get(ref, ref)
        if request.method == "DELETE":
            return self._delete(name, digest)
        found = self.manifests.get((name, digest))
        if found is None:
            return _error(404, "MANIFEST_UNKNOWN")
        body, media_type = found
        headers = {"Docker-Content-Digest": digest, "Content-Type": media_type}
        if request.method == "HEAD":
            return web.Response(headers={**headers, "Content-Length": str(len(body))})
        return web.Response(body=body, headers=headers)

    def _delete(self, name: str, digest: str) -> web.StreamResponse:
        if not self.delete_enabled:
            return _error(405, "UNSUPPORTED")
        if self.manifests.pop((name, digest), None) is None:
            return _error(404, "MANIFEST_UNKNOWN")
        self.tags[name] = {t: d for t, d in self.tags[name].items() if d != digest}
        return web.Response(status=202)

    def _catalog(self, request: web.Request) -> web.StreamResponse:
        names = sorted({*self.names, *self.tags}, key=lambda n: n.replace("/", "\x00"))
        n = int(request.query.get("n", "100"))
        if n > 1000:
            return _error(400, "PAGINATION_NUMBER_INVALID")
        last = request.query.get("last")
        after = [x for x in names if last is None or x.replace("/", "\x00") > last.replace("/", "\x00")]
        headers = {}
        if len(after) > n > 0:
            headers["Link"] = f'</v2/_catalog?last={after[n - 1]}&n={n}>; rel="next"'
        return web.json_response({"repositories": after[:n]}, headers=headers)


def _error(status: int, code: str) -> web.Response:
    return web.json_response({"errors": [{"code": code, "message": code.lower(), "detail": None}]}, status=status)
