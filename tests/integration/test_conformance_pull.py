"""OCI distribution-spec Pull and Content Discovery, differential: the proxy answers as its registry does.

Every request goes to the bare registry (the reference) and through a proxy
in front of it, once with a Basic challenge (mark's password on every
request) and once with a Bearer challenge (tokens for exactly the scopes
each challenge names). See tests/support/conformance.py for what "the same
answer" means; test_conformance_oci.py holds the deliberate differences.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.conformance import OCI_MANIFEST, Image, Pair, differential, sha256

MODES = ["basic", "bearer"]
ACCEPT_OCI = [("Accept", OCI_MANIFEST)]
# docker sends one Accept line per type it understands; every line must reach the registry.
ACCEPT_DOCKER = [("Accept", "application/vnd.docker.distribution.manifest.v2+json"),
                 ("Accept", "application/vnd.docker.distribution.manifest.list.v2+json"),
                 ("Accept", OCI_MANIFEST)]
MISSING = "sha256:" + "0" * 64


@pytest.fixture(params=MODES)
def pair(request: pytest.FixtureRequest, proxy_factory, registry, tls_files) -> Iterator[Pair]:
    with differential(registry, proxy_factory, tls_files.ca_cert, request.param) as both:
        yield both


# Pull / Pulling manifests (end-3): "GET /v2/<name>/manifests/<reference>" where the reference is a tag
# or a digest; the client SHOULD send Accept with the media types it supports; the registry answers 200
# with the manifest, Content-Type its media type and Docker-Content-Digest its digest. HEAD answers the
# same headers without a body (Checking if content exists in the registry).
def test_pull_manifest_by_tag_and_by_digest(pair: Pair) -> None:
    image = Image.make()
    pair.push_image("app", image, "v1")
    for method in ("GET", "HEAD"):
        for ref in ("v1", image.digest):
            ex = pair.same(method, "/v2/{app}/manifests/" + ref, ACCEPT_OCI, expect=200)
            assert ex.prx.header("Docker-Content-Digest") == image.digest
            assert ex.prx.header("Content-Type") == OCI_MANIFEST
        pair.same(method, "/v2/{app}/manifests/v1", ACCEPT_DOCKER, expect=200)
    assert pair.same("GET", "/v2/{app}/manifests/v1", ACCEPT_OCI).prx.body == image.manifest
    # No Accept at all: 2.8 answers 404 MANIFEST_UNKNOWN for an OCI manifest; the proxy must not hide that.
    pair.same("GET", "/v2/{app}/manifests/v1")


# Pull / Pulling blobs (end-2): "GET /v2/<name>/blobs/<digest>" answers 200 with the content (or a
# redirect); a registry SHOULD support Range requests (206). HEAD answers 200 with Content-Length.
def test_pull_blobs_whole_and_ranged(pair: Pair) -> None:
    image = Image.make(layer_size=5000)
    pair.push_image("app", image, "v1")
    for method in ("GET", "HEAD"):
        for blob in (image.config, image.layer):
            ex = pair.same(method, "/v2/{app}/blobs/" + sha256(blob), expect=200)
            assert ex.prx.header("Content-Length") == str(len(blob))
    assert pair.same("GET", "/v2/{app}/blobs/" + sha256(image.layer)).prx.body == image.layer
    layer = "/v2/{app}/blobs/" + sha256(image.layer)
    ranged = pair.same("GET", layer, [("Range", "bytes=10-19")], expect=206)
    assert ranged.prx.body == image.layer[10:20]
    assert pair.same("GET", layer, [("Range", "bytes=4990-")], expect=206).prx.body == image.layer[4990:]
    # Not compared: an unsatisfiable Range. 2.8 answers it 416 with the blob's Content-Length and a
    # 33-byte text body, so the reference itself is a truncated response.


# Pull / Checking if content exists: "If the manifest is not found in the repository, the response code
# MUST be 404 Not Found"; likewise for blobs. Error bodies carry MANIFEST_UNKNOWN, BLOB_UNKNOWN or
# NAME_UNKNOWN (Error Codes); a HEAD has no body, so only its status is compared.
def test_pull_what_does_not_exist(pair: Pair) -> None:
    pair.push_image("app", Image.make(), "v1")
    for method in ("GET", "HEAD"):
        for repo in ("app", "nothing"):
            pair.same(method, f"/v2/{{{repo}}}/manifests/missing", ACCEPT_OCI, expect=404)
            pair.same(method, f"/v2/{{{repo}}}/manifests/{MISSING}", ACCEPT_OCI, expect=404)
            pair.same(method, f"/v2/{{{repo}}}/blobs/{MISSING}", expect=404)
    assert pair.same("GET", "/v2/{app}/manifests/missing", ACCEPT_OCI).prx.json()["errors"][0]["code"] == \
        "MANIFEST_UNKNOWN"
    # Digest-shaped but not hex: the proxy's grammar lets it through; the registry's answer is passed on.
    pair.same("HEAD", "/v2/{app}/blobs/sha256:" + "z" * 64)


# Content Discovery / Listing Tags (end-8a, end-8b): "GET /v2/<name>/tags/list" answers 200 with
# {"name": ..., "tags": [...]}; "?n=<int>" limits the list and a Link header (RFC 5988) names the next
# page; "?n=<int>&last=<tag>" starts after <tag>. An unknown repository is 404 NAME_UNKNOWN.
def test_list_tags_with_and_without_pagination(pair: Pair) -> None:
    image = Image.make()
    pair.push_image("app", image, "a")
    for tag in ("b", "c", "d", "e"):
        pair.same("PUT", "/v2/{app}/manifests/" + tag, [("Content-Type", OCI_MANIFEST)], image.manifest, expect=201)
    full = pair.same("GET", "/v2/{app}/tags/list", expect=200)
    assert sorted(full.prx.json()["tags"]) == ["a", "b", "c", "d", "e"]
    # 2.8 ignores n and last (every tag, in storage order, no Link); the proxy must pass them on as sent
    # and, for a registry that pages, hand back a Link on its own origin (compared in Pair.same).
    first = pair.same("GET", "/v2/{app}/tags/list?n=2", expect=200)
    if first.reg.header("Link") is not None:
        pair.same("GET", first.links(), expect=200)
    pair.same("GET", "/v2/{app}/tags/list?n=2&last=b", expect=200)
    pair.tap.clear()
    pair.prx.send("GET", pair.prx.path("/v2/{app}/tags/list?n=2&last=b"))
    assert [r.target.split("?")[1] for r in pair.tap.requests()] == ["n=2&last=b"]
    pair.same("GET", "/v2/{app}/tags/list?n=0")
    pair.same("GET", "/v2/{app}/tags/list?last=c", expect=200)
    pair.same("GET", "/v2/{nothing}/tags/list", expect=404)


# Content Discovery / Listing Referrers (end-12a, end-12b): "GET /v2/<name>/referrers/<digest>" with an
# optional artifactType filter. A registry without the API (2.8) answers 404; the proxy must forward the
# request rather than invent an answer, so a registry that has it is not hidden.
def test_list_referrers(pair: Pair) -> None:
    image = Image.make()
    pair.push_image("app", image, "v1")
    pair.same("GET", "/v2/{app}/referrers/" + image.digest)
    pair.same("GET", "/v2/{app}/referrers/" + image.digest + "?artifactType=application%2Fexample")
    pair.same("GET", "/v2/{app}/referrers/" + MISSING)
    pair.tap.clear()
    pair.prx.send("GET", pair.prx.path("/v2/{app}/referrers/" + image.digest))
    assert [r.target.split("/referrers/")[-1] for r in pair.tap.requests()] == [image.digest]


# Repository names are "<component>(/<component>)*"; a component may be "manifests", "blobs", "tags" or
# "uploads", and the router must still find the name before the last route suffix, as the registry does.
def test_names_that_look_like_routes(pair: Pair) -> None:
    image = Image.make()
    for repo in ("x/manifests", "x/blobs", "x/blobs/uploads", "x/tags/list", "x/referrers"):
        pair.push_image(repo, image, "v1")
        pair.same("GET", f"/v2/{{{repo}}}/manifests/v1", ACCEPT_OCI, expect=200)
        pair.same("GET", f"/v2/{{{repo}}}/blobs/{sha256(image.layer)}", expect=200)
        assert pair.same("GET", f"/v2/{{{repo}}}/tags/list", expect=200).prx.json()["tags"] == ["v1"]
