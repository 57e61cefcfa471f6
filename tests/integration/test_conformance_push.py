"""OCI distribution-spec Push and Content Management, differential: the proxy answers as its registry does.

Same rig as test_conformance_pull.py: the bare registry is the reference,
the proxy in front of it is judged once with a Basic and once with a
Bearer challenge, and every follow-up request of an upload is built from
that side's own ``Location``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support.authz import challenge_params
from tests.support.conformance import OCI_MANIFEST, OCTET, Image, Pair, differential, sha256

MODES = ["basic", "bearer"]
MANIFEST = [("Content-Type", OCI_MANIFEST)]
MISSING = "sha256:" + "0" * 64


@pytest.fixture(params=MODES)
def pair(request: pytest.FixtureRequest, proxy_factory, registry, tls_files) -> Iterator[Pair]:
    with differential(registry, proxy_factory, tls_files.ca_cert, request.param) as both:
        yield both


def chunk(start: int, data: bytes) -> list[tuple[str, str]]:
    return [*OCTET, ("Content-Range", f"{start}-{start + len(data) - 1}")]


# Push / Pushing a blob monolithically, "POST then PUT" (end-4a, end-6): POST answers 202 with a Location;
# "PUT <location>?digest=<digest>" with the whole blob answers 201 with Location and Docker-Content-Digest.
# A digest that does not match the content is 400 DIGEST_INVALID (Error Codes).
def test_push_blob_post_then_put(pair: Pair) -> None:
    data = Image.make().layer
    done = pair.push_blob("app", data)
    assert done.prx.header("Docker-Content-Digest") == sha256(data)
    pair.same("HEAD", "/v2/{app}/blobs/" + sha256(data), expect=200)
    start = pair.same("POST", "/v2/{app}/blobs/uploads/", body=b"", expect=202)
    pair.same("PUT", start.locations("digest=" + sha256(b"other")), OCTET, data, expect=400)
    other = Image.make().layer  # the digest percent-encoded, as many clients send it
    start = pair.same("POST", "/v2/{app}/blobs/uploads/", body=b"", expect=202)
    pair.same("PUT", start.locations("digest=" + sha256(other).replace(":", "%3A")), OCTET, other, expect=201)


# Push / Single POST (end-4b): "POST /v2/<name>/blobs/uploads/?digest=<digest>" with the blob as body;
# 201 if the registry supports it, else a 202 session the client completes with PUT. 2.8 answers 202.
def test_push_blob_single_post(pair: Pair) -> None:
    data = Image.make().layer
    start = pair.same("POST", "/v2/{app}/blobs/uploads/?digest=" + sha256(data), OCTET, data, expect={201, 202})
    if start.reg.status == 202:
        pair.same("PUT", start.locations("digest=" + sha256(data)), OCTET, data, expect=201)
    pair.same("GET", "/v2/{app}/blobs/" + sha256(data), expect=200)


# Push / Pushing a blob in chunks (end-5, end-6, end-13): PATCH with Content-Type application/octet-stream,
# Content-Range and Content-Length answers 202 with Location and Range "0-<end>"; "GET <location>" answers
# 204 with the same Range; the last chunk MAY come with the closing "PUT <location>?digest=<digest>".
def test_push_blob_in_chunks(pair: Pair) -> None:
    data = Image.make(layer_size=3000).layer
    step = pair.same("POST", "/v2/{app}/blobs/uploads/", body=b"", expect=202)
    for start in (0, 1000):
        step = pair.same("PATCH", step.locations(), chunk(start, data[start:start + 1000]), data[start:start + 1000],
                         expect=202)
        assert step.prx.header("Range") == f"0-{start + 999}"
    status = pair.same("GET", step.locations(), expect=204)
    assert status.prx.header("Range") == "0-1999"
    pair.same("PUT", status.locations("digest=" + sha256(data)), chunk(2000, data[2000:]), data[2000:], expect=201)
    assert pair.same("GET", "/v2/{app}/blobs/" + sha256(data), expect=200).prx.body == data


# Push / Pushing a blob in chunks: "If a chunk is uploaded out of order, the registry MUST respond with 416
# Requested Range Not Satisfiable". 2.8 predates that rule and appends the chunk (202): the proxy must
# answer what its registry answers, whichever it is.
def test_push_chunk_out_of_order(pair: Pair) -> None:
    data = Image.make(layer_size=3000).layer
    step = pair.same("POST", "/v2/{app}/blobs/uploads/", body=b"", expect=202)
    step = pair.same("PATCH", step.locations(), chunk(0, data[:1000]), data[:1000], expect=202)
    pair.same("PATCH", step.locations(), chunk(2000, data[2000:]), data[2000:], expect={202, 416})


# Push / upload status and cancel (end-13, and DELETE of an upload session): "GET <location>" answers 204
# with Range; "DELETE <location>" ends the session (204), after which the upload is 404
# BLOB_UPLOAD_UNKNOWN for status and for more data.
def test_upload_status_then_cancel(pair: Pair) -> None:
    step = pair.same("POST", "/v2/{app}/blobs/uploads/", body=b"", expect=202)
    step = pair.same("PATCH", step.locations(), chunk(0, b"x" * 100), b"x" * 100, expect=202)
    pair.same("GET", step.locations(), expect=204)
    pair.same("DELETE", step.locations(), expect=204)
    pair.same("GET", step.locations(), expect=404)
    pair.same("PATCH", step.locations(), chunk(100, b"y"), b"y", expect=404)
    pair.same("GET", "/v2/{app}/blobs/uploads/0b4cbb4f-1b2d-4a5e-9e43-6a3c7e2c0e11", expect=404)


# Push / Mounting a blob from another repository (end-11): "POST /v2/<name>/blobs/uploads/?mount=<digest>
# &from=<other>" answers 201 with Location when the blob is mounted, or 202 (a plain upload session) when
# it cannot be; a registry MAY also accept mount without from (2.8 starts an upload: 202).
def test_mount_blob_from_another_repository(pair: Pair) -> None:
    data = Image.make().layer
    pair.push_blob("src", data)
    mounted = pair.same("POST", f"/v2/{{dst}}/blobs/uploads/?mount={sha256(data)}&from={{src}}", body=b"", expect=201)
    assert mounted.prx.header("Docker-Content-Digest") == sha256(data)
    pair.same("HEAD", "/v2/{dst}/blobs/" + sha256(data), expect=200)
    pair.same("POST", f"/v2/{{other}}/blobs/uploads/?mount={MISSING}&from={{src}}", body=b"", expect=202)
    pair.same("POST", f"/v2/{{third}}/blobs/uploads/?mount={sha256(data)}", body=b"", expect={201, 202})


def test_mount_challenge_names_both_scopes(proxy_factory, registry, tls_files) -> None:
    """A token for the challenge's scopes must be enough: the mount needs pull on its source too."""
    with differential(registry, proxy_factory, tls_files.ca_cert, "bearer") as pair:
        path = pair.prx.path(f"/v2/{{dst}}/blobs/uploads/?mount={MISSING}&from={{src}}")
        challenge = pair.prx.client.request("POST", path, body=b"").header("WWW-Authenticate") or ""
        scopes = challenge_params(challenge)["scope"].split(" ")
        assert scopes == [f"repository:{pair.prx.prefix}/dst:pull,push", f"repository:{pair.prx.prefix}/src:pull"]


# Push / Pushing Manifests (end-7): "PUT /v2/<name>/manifests/<reference>" (a tag or the manifest's
# digest) with Content-Type the manifest's media type answers 201 with Location and Docker-Content-Digest.
def test_push_manifest_by_tag_and_by_digest(pair: Pair) -> None:
    image = Image.make()
    by_tag = pair.push_image("app", image, "v1")
    assert by_tag.prx.header("Docker-Content-Digest") == image.digest
    pair.same("PUT", "/v2/{app}/manifests/" + image.digest, MANIFEST, image.manifest, expect=201)
    pair.same("GET", "/v2/{app}/manifests/" + image.digest, [("Accept", OCI_MANIFEST)], expect=200)


# Push / Pushing Manifests: "If a manifest references a blob the registry does not have, it MUST fail with
# MANIFEST_BLOB_UNKNOWN" (400 or 404); a body that is not a manifest of its Content-Type is 400
# MANIFEST_INVALID.
def test_push_manifest_refused(pair: Pair) -> None:
    image = Image.make(missing_layer=True)
    pair.push_blob("app", image.config)
    pair.same("PUT", "/v2/{app}/manifests/v1", MANIFEST, image.manifest, expect={400, 404})
    good = Image.make()
    pair.push_blob("app", good.config)
    pair.push_blob("app", good.layer)
    for content_type in ("application/json", "text/plain", "application/vnd.oci.image.index.v1+json"):
        pair.same("PUT", "/v2/{app}/manifests/ct", [("Content-Type", content_type)], good.manifest, expect=400)
    pair.same("PUT", "/v2/{app}/manifests/ct", (), good.manifest, expect=400)
    pair.same("PUT", "/v2/{app}/manifests/ct", MANIFEST, b"{not json", expect=400)
    pair.same("PUT", "/v2/{app}/manifests/ct", MANIFEST, json.dumps({"schemaVersion": 2}).encode())


# Content Management / Deleting tags and Deleting Manifests (end-9): "DELETE /v2/<name>/manifests/<digest>"
# answers 202; afterwards GET is 404 MANIFEST_UNKNOWN. Deleting by tag: 202, or 400/405 when the registry
# does not support it (2.8: 400 DIGEST_INVALID).
def test_delete_manifest(pair: Pair) -> None:
    image = Image.make()
    pair.push_image("app", image, "v1")
    pair.same("DELETE", "/v2/{app}/manifests/v1", expect={202, 400, 405})
    pair.same("DELETE", "/v2/{app}/manifests/" + image.digest, expect=202)
    for ref in (image.digest, "v1"):
        pair.same("GET", "/v2/{app}/manifests/" + ref, [("Accept", OCI_MANIFEST)], expect=404)
        pair.same("HEAD", "/v2/{app}/manifests/" + ref, [("Accept", OCI_MANIFEST)], expect=404)
    pair.same("GET", "/v2/{app}/tags/list")
    pair.same("DELETE", "/v2/{app}/manifests/" + image.digest, expect=404)
    pair.same("DELETE", "/v2/{nothing}/manifests/" + MISSING, expect=404)


# Content Management / Deleting Blobs (end-10): "DELETE /v2/<name>/blobs/<digest>" answers 202; then the
# blob is 404 BLOB_UNKNOWN, and so is deleting it again.
def test_delete_blob(pair: Pair) -> None:
    data = Image.make().layer
    pair.push_blob("app", data)
    pair.same("DELETE", "/v2/{app}/blobs/" + sha256(data), expect=202)
    pair.same("GET", "/v2/{app}/blobs/" + sha256(data), expect=404)
    pair.same("HEAD", "/v2/{app}/blobs/" + sha256(data), expect=404)
    pair.same("DELETE", "/v2/{app}/blobs/" + sha256(data), expect=404)
