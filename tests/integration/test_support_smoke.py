"""Proves the test infrastructure itself against the bare registry (no proxy).

If these fail, proxy test failures mean nothing; if they pass, the clients,
the registry, the tap and the docker daemon are known-good.
"""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Callable
from pathlib import Path

from tests.support.clients import Skopeo, must
from tests.support.dockerd import DockerDaemon
from tests.support.image import OciImage, to_docker_archive
from tests.support.registry import Registry, bad_blobs, verify_blobs
from tests.support.tap import RequestStreamParser, Tap, parse_head


def test_skopeo_round_trip_keeps_manifest_digest(
    registry: Registry, skopeo: Skopeo, oci_image: Callable[..., OciImage], tmp_path: Path
) -> None:
    image = oci_image(tag="v1", layers=3)
    ref = f"{registry.host_port}/smoke/roundtrip:v1"
    # --dest/src-tls-verify=false only because this is the bare plain-HTTP registry.
    must(skopeo.push(image.ref, ref, plain_http=True))
    assert must(skopeo.inspect_digest(ref, plain_http=True)).stdout.strip() == image.digest

    must(skopeo.pull(ref, tmp_path / "back", tag="v1", plain_http=True))
    index = json.loads((tmp_path / "back" / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest
    stored = {check.digest for check in registry.blobs()}
    assert {layer.digest for layer in image.layers} <= stored
    assert image.config.digest in stored
    assert not [check for check in registry.blobs() if not check.ok]


def test_tap_records_request_heads(registry: Registry, skopeo: Skopeo, oci_image: Callable[..., OciImage]) -> None:
    tap = Tap(registry.port).start()
    try:
        with urllib.request.urlopen(tap.url + "/v2/", timeout=10) as resp:
            assert resp.status == 200
        first = tap.requests()
        assert first[0].method == "GET" and first[0].target == "/v2/"
        assert tap.request_heads()[0].startswith(b"GET /v2/ HTTP/1.1\r\n")
        tap.clear()
        assert tap.request_heads() == []

        # A real push through the tap: bodies stream through, every head is seen.
        image = oci_image(layers=2, file_size=2 * 1024 * 1024)
        must(skopeo.push(image.ref, f"127.0.0.1:{tap.port}/smoke/tap:latest", plain_http=True))
        heads = tap.requests()
        methods = {head.method for head in heads}
        assert {"POST", "PUT"} <= methods
        assert not any(head.has_header("Authorization") for head in heads)
        manifest_puts = [h for h in heads if h.method == "PUT" and "/manifests/" in h.target]
        assert manifest_puts and manifest_puts[0].target.endswith("/manifests/latest")
        assert not bad_blobs(registry.storage)
    finally:
        tap.stop()


def test_registry_restart_same_port_and_storage(
    registry: Registry, skopeo: Skopeo, oci_image: Callable[..., OciImage]
) -> None:
    image = oci_image()
    ref = f"{registry.host_port}/smoke/restart:latest"
    must(skopeo.push(image.ref, ref, plain_http=True))
    port = registry.port
    with registry.stopped():
        assert not registry.running
        assert skopeo.inspect_digest(ref, plain_http=True).returncode != 0
    assert registry.running and registry.port == port
    assert must(skopeo.inspect_digest(ref, plain_http=True)).stdout.strip() == image.digest


def test_docker_daemon_load_and_push_to_bare_registry(
    registry: Registry, docker_daemon: DockerDaemon, oci_image: Callable[..., OciImage], tmp_path: Path
) -> None:
    image = oci_image(tag="v2")
    archive = to_docker_archive(image, tmp_path / "image.tar", "example.test/smoke")
    docker = docker_daemon.client(tmp_path / "docker")
    assert "example.test/smoke:v2" in must(docker.load(archive)).stdout
    ref = f"{registry.host_port}/smoke/docker:v2"
    must(docker.tag("example.test/smoke:v2", ref))
    pushed = must(docker.push(ref))  # 127.0.0.0/8 is "insecure" to dockerd: plain HTTP works
    digest = docker.repo_digests(ref)[0].split("@", 1)[1]
    assert f"digest: {digest}" in pushed.stdout
    must(docker.rmi(ref, "example.test/smoke:v2"))
    must(docker.pull(ref))
    assert must(docker.inspect_digest(ref)).stdout == digest
    assert not bad_blobs(registry.storage)


def test_blob_verification_detects_corruption(
    registry: Registry, skopeo: Skopeo, oci_image: Callable[..., OciImage], tmp_path: Path
) -> None:
    image = oci_image(layers=1)
    must(skopeo.push(image.ref, f"{registry.host_port}/smoke/corrupt:latest", plain_http=True))
    copy_root = tmp_path / "storage-copy"
    shutil.copytree(registry.storage, copy_root)
    assert verify_blobs(copy_root) and not bad_blobs(copy_root)

    layer_hex = image.layers[0].digest.split(":", 1)[1]
    data = copy_root / "docker/registry/v2/blobs/sha256" / layer_hex[:2] / layer_hex / "data"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    assert [check.digest for check in bad_blobs(copy_root)] == [image.layers[0].digest]
    assert not bad_blobs(registry.storage)  # the live storage is untouched


def test_tap_parser_handles_chunked_and_pipelined_requests_split_anywhere() -> None:
    chunked = (
        b"PATCH /v2/a/blobs/uploads/1 HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n4\r\n\r\n\r\n\r\n0\r\nX-Trailer: y\r\n\r\n"
    )
    fixed = b"PUT /v2/a/blobs/uploads/1 HTTP/1.1\r\nContent-Length: 4\r\n\r\nGET "
    plain = b"GET /v2/ HTTP/1.1\r\nAuthorization: Basic Og==\r\n\r\n"
    stream = chunked + b"\r\n" + fixed + plain
    for split in range(1, len(stream)):
        heads: list[bytes] = []
        parser = RequestStreamParser(heads.append)
        parser.feed(stream[:split])
        parser.feed(stream[split:])
        assert [parse_head(h).method for h in heads] == ["PATCH", "PUT", "GET"], split
        assert parse_head(heads[2]).has_header("authorization")
        assert not parser.raw

    tls_hello = RequestStreamParser(lambda head: None)
    tls_hello.feed(b"\x16\x03\x01\x02\x00\x01")
    assert tls_hello.raw
