"""Concurrent pushes of different multi-layer images alongside concurrent pulls: nothing lost, nothing mixed.

Quick mode (CI): 20 pushes + 20 pulls; RAP_SOAK=1: the issue's 50 + 50.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor

from tests.support.httpclient import Client, basic, put_blob

MARK = basic("mark", "pusherpwd")
N = 50 if os.environ.get("RAP_SOAK") == "1" else 20
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def _blob(client: Client, repo: str, data: bytes) -> str:
    return put_blob(client, repo, data, MARK)


def push_image(client: Client, repo: str, tag: str, layers: int = 3) -> tuple[str, list[tuple[str, bytes]]]:
    """Push config + layers + manifest; returns the manifest digest and (digest, bytes) of every blob."""
    blobs = []
    config = json.dumps({"architecture": "amd64", "os": "linux", "tag": tag,
                         "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    cdigest = _blob(client, repo, config)
    blobs.append((cdigest, config))
    entries = []
    for _ in range(layers):
        data = os.urandom(48 * 1024)
        digest = _blob(client, repo, data)
        blobs.append((digest, data))
        entries.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest,
                        "size": len(data)})
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest,
                                      "size": len(config)},
                           "layers": entries}).encode()
    reply = client.request("PUT", f"/v2/{repo}/manifests/{tag}",
                           [("Authorization", MARK), ("Content-Type", OCI_MANIFEST)], body=manifest)
    assert reply.status == 201, reply.body
    mdigest = "sha256:" + hashlib.sha256(manifest).hexdigest()
    assert reply.header("Docker-Content-Digest") == mdigest
    return mdigest, blobs


def pull_image(client: Client, repo: str, tag: str) -> tuple[str, list[str]]:
    """Anonymous pull: manifest, then every blob; returns the manifest digest and each blob's real digest."""
    reply = client.request("GET", f"/v2/{repo}/manifests/{tag}", [("Accept", OCI_MANIFEST)])
    assert reply.status == 200, reply.body
    manifest = json.loads(reply.body)
    got = []
    for entry in [manifest["config"], *manifest["layers"]]:
        blob = client.request("GET", f"/v2/{repo}/blobs/{entry['digest']}")
        assert blob.status == 200
        got.append("sha256:" + hashlib.sha256(blob.body).hexdigest())
        assert got[-1] == entry["digest"]
    return "sha256:" + hashlib.sha256(reply.body).hexdigest(), got


def test_concurrent_pushes_and_pulls_lose_nothing(proxy_factory, tls_files, registry):
    proxy = proxy_factory()
    client = Client(proxy.url, tls_files.ca_cert)
    assert client.request("GET", "/v2/", [("Authorization", MARK)]).status == 200  # warm the password cache
    seeded = {i: push_image(client, f"conc/seed{i % 4}", f"s{i}") for i in range(4)}
    with ThreadPoolExecutor(max_workers=16) as pool:
        pushes = {i: pool.submit(push_image, client, f"conc/app{i}", f"v{i}", 2 + i % 3) for i in range(N)}
        pulls = [pool.submit(pull_image, client, f"conc/seed{i % 4}", f"s{i % 4}") for i in range(N)]
        pushed = {i: f.result(timeout=300) for i, f in pushes.items()}
        pulled = [f.result(timeout=300) for f in pulls]
    for i, (mdigest, blobs) in enumerate(pulled):
        assert mdigest == seeded[i % 4][0]
        assert blobs == [d for d, _ in seeded[i % 4][1]]
    # every pushed manifest pulls back, through the proxy, with identical digests and bytes
    for i, (mdigest, blobs) in pushed.items():
        got, blob_digests = pull_image(client, f"conc/app{i}", f"v{i}")
        assert got == mdigest
        assert blob_digests == [d for d, _ in blobs]
    tags = client.request("GET", f"/v2/conc/app{N - 1}/tags/list").json()
    assert tags["tags"] == [f"v{N - 1}"]
    assert [b for b in registry.blobs() if not b.ok] == []
