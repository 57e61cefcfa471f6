"""Tiny images pushed with raw HTTP: one config blob + one small layer + an OCI manifest.

Fast enough to create a hundred repositories directly on the backend (for
catalog pagination) or through a proxy with credentials.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from urllib.parse import urlsplit

from tests.support.httpclient import Client

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True)
class Tiny:
    digest: str  # of the manifest
    size: int  # of the manifest
    layer_size: int


def _auth(auth: str | None) -> list[tuple[str, str]]:
    return [("Authorization", auth)] if auth else []


def push_blob(client: Client, repo: str, data: bytes, auth: str | None = None) -> str:
    """POST, then a monolithic PUT with the whole body (registry 2.8 has no single-POST upload)."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = client.request("POST", f"/v2/{repo}/blobs/uploads/", _auth(auth), body=b"")
    assert start.status == 202, (start.status, start.body)
    location = urlsplit(start.header("Location") or "")
    reply = client.request("PUT", f"{location.path}?{location.query}&digest={digest.replace(':', '%3A')}",
                           [*_auth(auth), ("Content-Type", "application/octet-stream")], body=data)
    assert reply.status == 201, (reply.status, reply.body)
    return digest


def push_tiny(client: Client, repo: str, tag: str = "latest", auth: str | None = None,
              layer_size: int = 1000, arch: str = "amd64") -> Tiny:
    """Push a tiny image (``tag`` may also be a digest-less tag name for the manifest)."""
    config = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": []},
                         "nonce": os.urandom(8).hex()}).encode()
    cdigest = push_blob(client, repo, config, auth)
    layer = os.urandom(layer_size)
    ldigest = push_blob(client, repo, layer, auth)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ldigest,
                    "size": len(layer)}],
    }).encode()
    reply = client.request("PUT", f"/v2/{repo}/manifests/{tag}", [*_auth(auth), ("Content-Type", OCI_MANIFEST)],
                           body=manifest)
    assert reply.status == 201, (reply.status, reply.body)
    return Tiny("sha256:" + hashlib.sha256(manifest).hexdigest(), len(manifest), len(layer))


def push_index(client: Client, repo: str, tag: str, children: dict[str, Tiny], auth: str | None = None) -> str:
    """An OCI index over already pushed manifests, keyed by ``os/arch``."""
    index = json.dumps({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": t.digest, "size": t.size,
                       "platform": {"os": plat.split("/")[0], "architecture": plat.split("/")[1]}}
                      for plat, t in children.items()],
    }).encode()
    reply = client.request("PUT", f"/v2/{repo}/manifests/{tag}", [*_auth(auth), ("Content-Type", OCI_INDEX)],
                           body=index)
    assert reply.status == 201, (reply.status, reply.body)
    return "sha256:" + hashlib.sha256(index).hexdigest()
