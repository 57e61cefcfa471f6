"""Where the proxy answers unlike its registry, on purpose: each difference stated, with its reason.

The rest of the conformance suite (test_conformance_pull.py,
test_conformance_push.py) asserts that the proxy answers exactly as the bare
registry does. The requests here are the exceptions: the proxy refuses them
itself, from its router or body check, before any credentials matter and
without forwarding (the tap between proxy and registry stays empty). For
each, the table states the registry's answer, the proxy's, and why the
proxy's is the one to keep; a row that starts to differ from reality fails.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.conformance import API_VERSION, OCI_MANIFEST, Difference, Image, Pair, differential, error_code
from tests.support.httpclient import basic

MODES = ["basic", "bearer"]
MISSING = "sha256:" + "0" * 64
BAD = "sha256:totallywrong"
UNKNOWN = "MANIFEST_UNKNOWN"
MANIFEST = (("Content-Type", OCI_MANIFEST),)
ROUTER = "no JSON error: the registry's router answers in text"

# Reads of what cannot exist (Pull / Checking if content exists: "If the manifest is not found ... MUST be
# 404"). The OCI conformance suite sends GET/HEAD .../manifests/.INVALID_MANIFEST_NAME and expects 404.
READS = [
    Difference("GET", "/v2/{app}/manifests/.INVALID_MANIFEST_NAME", (404, None), (404, UNKNOWN),
               f"not a tag or digest: unknown; {ROUTER}, the proxy in the spec's JSON"),
    Difference("HEAD", "/v2/{app}/manifests/.INVALID_MANIFEST_NAME", (404, None), (404, None), "as GET"),
    Difference("GET", "/v2/{app}/manifests/SHA256:" + "a" * 64, (404, None), (404, UNKNOWN),
               f"algorithms are lowercase: not a digest, not a tag; {ROUTER}"),
    Difference("GET", "/v2/{app}/manifests/" + BAD, (500, "UNKNOWN"), (404, UNKNOWN),
               "2.8 takes it for a tag and its storage driver fails (500); nothing can exist there: 404"),
    Difference("HEAD", "/v2/{app}/manifests/" + BAD, (500, None), (404, None), "as GET"),
    Difference("GET", "/v2/{app}/referrers/" + BAD, (404, None), (404, UNKNOWN), ROUTER),
]
# Writes naming an invalid reference (Error Codes: TAG_INVALID, DIGEST_INVALID are 400): refused, and the
# registry never sees a path it would take for something else (2.8 fails with 500 on some of them).
WRITES = [
    Difference("PUT", "/v2/{app}/manifests/.INVALID", (404, None), (400, "TAG_INVALID"),
               f"TAG_INVALID is the spec's code for this; {ROUTER}", MANIFEST, b"{}"),
    Difference("PUT", "/v2/{app}/manifests/" + BAD, (500, "UNKNOWN"), (400, "DIGEST_INVALID"),
               "2.8 fails with 500", MANIFEST, b"{}"),
    Difference("DELETE", "/v2/{app}/manifests/.INVALID", (404, None), (400, "TAG_INVALID"),
               f"writes of an invalid reference are 400; {ROUTER}"),
    Difference("DELETE", "/v2/{app}/manifests/" + BAD, (400, "DIGEST_INVALID"), (400, "DIGEST_INVALID"),
               "same answer, given by the proxy: not forwarded"),
    Difference("DELETE", "/v2/{app}/blobs/" + BAD, (400, "DIGEST_INVALID"), (400, "DIGEST_INVALID"),
               "same answer, given by the proxy: not forwarded"),
    # A blob read of an "algorithm:encoded" that does not parse: 2.8's blob route takes it and says 400
    # DIGEST_INVALID; the proxy says the same without forwarding (anything not that shape is 404).
    Difference("GET", "/v2/{app}/blobs/" + BAD, (400, "DIGEST_INVALID"), (400, "DIGEST_INVALID"),
               "same answer, given by the proxy: not forwarded"),
    Difference("HEAD", "/v2/{app}/blobs/" + BAD, (400, None), (400, None), "as GET"),
]
# Names, routes and methods outside the API's grammar.
ROUTES = [
    Difference("GET", "/v2/Conf/UP/manifests/v1", (404, None), (400, "NAME_INVALID"),
               "the spec's code for a name outside the grammar; the registry's router just does not match"),
    Difference("HEAD", "/v2/Conf/UP/manifests/v1", (404, None), (400, None), "as GET"),
    Difference("PUT", "/v2/Conf/UP/manifests/v1", (404, None), (400, "NAME_INVALID"), "as GET", MANIFEST, b"{}"),
    Difference("GET", "/v2/{app}/blobs/uploads/abc.def", (404, "BLOB_UPLOAD_INVALID"), (404, "NOT_FOUND"),
               "upload ids are the registry's own (clients follow Location); others are not routed"),
    Difference("POST", "/v2/{app}/blobs/uploads/abc", (404, "BLOB_UPLOAD_INVALID"), (405, "UNSUPPORTED"),
               "POST only starts a session; the proxy says which methods exist (Allow)", (), b""),
    Difference("POST", "/v2/{app}/manifests/v1", (405, None), (405, "UNSUPPORTED"), ROUTER, (), b""),
    Difference("OPTIONS", "/v2/{app}/tags/list", (200, None), (405, "UNSUPPORTED"),
               "only the API's methods are served (no CORS preflight)"),
    Difference("GET", "/v2/{app}/nothing-here", (404, None), (404, "NOT_FOUND"), ROUTER),
]
# Bodies and mount sources the registry would read parameters from past the proxy's judgement.
REFUSALS = [
    Difference("POST", "/v2/{app}/blobs/uploads/", (202, None), (415, "UNSUPPORTED"),
               "form bodies refused: Go's FormValue would read from/mount/digest out of the body, past "
               "the query the proxy judged", (("Content-Type", "application/x-www-form-urlencoded"),), b""),
    Difference("PUT", "/v2/{app}/manifests/v1", (400, "MANIFEST_INVALID"), (415, "UNSUPPORTED"),
               "as above", (("Content-Type", "multipart/form-data; boundary=x"),), b"--x--\r\n"),
    Difference("POST", f"/v2/{{app}}/blobs/uploads/?mount={MISSING}&from=Bad/Name", (202, None),
               (400, "NAME_INVALID"), "the mount source needs pull there: a name outside the grammar "
               "cannot be judged", (), b""),
    Difference("POST", f"/v2/{{app}}/blobs/uploads/?mount={MISSING}&from={{a}}&from={{b}}", (202, None),
               (400, "NAME_INVALID"), "two sources: the registry takes the first, a judge might take the "
               "last; refused rather than guessed", (), b""),
]
TABLE = READS + WRITES + ROUTES + REFUSALS


@pytest.fixture(params=MODES)
def pair(request: pytest.FixtureRequest, proxy_factory, registry, tls_files) -> Iterator[Pair]:
    with differential(registry, proxy_factory, tls_files.ca_cert, request.param) as both:
        yield both


def test_deliberate_differences_are_exactly_as_stated(pair: Pair) -> None:
    pair.push_image("app", Image.make(), "v1")
    wrong = []
    for row in TABLE:
        try:
            pair.differs_as(row)
        except AssertionError as exc:
            wrong.append(str(exc))
    assert wrong == [], "\n\n".join(wrong)


def test_every_difference_is_not_worse_for_conformance() -> None:
    """What the OCI conformance suite checks still holds where the proxy answers itself.

    A read of a manifest or blob that cannot exist is 404 (never the registry's 400 or 500), no refusal
    is a 5xx, and every refusal with a body is the spec's JSON error.
    """
    assert {(r.method, r.path) for r in READS} >= {("GET", "/v2/{app}/manifests/.INVALID_MANIFEST_NAME"),
                                                   ("HEAD", "/v2/{app}/manifests/.INVALID_MANIFEST_NAME")}
    assert [r for r in READS if r.proxy[0] != 404] == []
    assert [r for r in TABLE if r.proxy[0] >= 500] == []
    assert [r for r in TABLE if r.method != "HEAD" and r.proxy[1] is None] == []


# Determining support (end-1): "GET /v2/" answers 200 when the client may use the API; a 401 carries
# WWW-Authenticate, and clients (docker) recognise a v2 registry by Docker-Distribution-Api-Version on it.
def test_ping(pair: Pair) -> None:
    pair.same("GET", "/v2/", expect=200)
    anonymous = pair.prx.client.request("GET", "/v2/")
    assert anonymous.status == 401 and error_code(anonymous) == "UNAUTHORIZED"
    assert (anonymous.header("WWW-Authenticate") or "").startswith("Basic " if pair.prx.mode == "basic" else "Bearer ")
    assert anonymous.all(API_VERSION) == ["registry/2.0"]


def test_every_proxy_answer_has_one_version_header(pair: Pair) -> None:
    """Forwarded, refused, challenged, HEAD, token: one Docker-Distribution-Api-Version line each."""
    image = Image.make()
    pair.push_image("app", image, "v1")
    client, path = pair.prx.client, pair.prx.path
    write = client.request("POST", path("/v2/{app}/blobs/uploads/"), body=b"")
    answers = [
        client.request("GET", "/v2/"),
        write,
        client.request("POST", path("/v2/{app}/blobs/uploads/"), [("Authorization", basic("mark", "wrong"))], b""),
        client.request("GET", path("/v2/{app}/manifests/v1"), [("Accept", OCI_MANIFEST)]),
        client.request("HEAD", path("/v2/{app}/blobs/" + image.digest)),
        client.request("GET", path("/v2/{app}/manifests/missing")),
        client.request("GET", path("/v2/{app}/manifests/.bad")),
        client.request("OPTIONS", path("/v2/{app}/tags/list")),
        client.request("GET", "/elsewhere"),
    ]
    answers.append(client.request("GET", "/token", [("Authorization", basic("mark", "pusherpwd"))]))
    assert {r.status for r in answers} >= {200, 401, 404, 405}
    assert [r.all(API_VERSION) for r in answers] == [["registry/2.0"]] * len(answers), \
        [(r.status, r.all(API_VERSION)) for r in answers]
