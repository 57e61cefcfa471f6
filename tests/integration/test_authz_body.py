"""Form bodies cannot smuggle registry parameters past the proxy (issue 10, case 1).

distribution reads ``mount``, ``from``, ``digest`` and ``_state`` with Go's
``r.FormValue``, which parses urlencoded and multipart bodies of POST, PUT
and PATCH and lets them win over the query the proxy judged. A pusher who
may not pull ``vault/**`` could mount a vault blob into a repository of his
own with ``mount=D&from=vault/secret`` in the body and read it anonymously
there. Such bodies are refused before anything is forwarded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator

import pytest

from tests.support.authz import (
    MARK,
    READER,
    Rig,
    bearer,
    error_code,
    path_of,
    start_rig,
    token,
    unique,
)
from tests.support.clients import must
from tests.support.tap import Tap
from tests.support.tinyimage import push_blob, push_tiny

ACCESS = {
    "pull": "anyone",
    "push": ["pusher"],
    "delete": ["pusher"],
    "repositories": [{"match": "vault/**", "pull": ["admins"], "push": ["admins"]}],
}
GROUPS = "pusher: mark\nadmins: reader\n"  # reader is the admin who owns the vault; mark only pushes
URLENCODED = "application/x-www-form-urlencoded"


@pytest.fixture
def tap(registry) -> Iterator[Tap]:
    t = Tap(registry.port).start()
    yield t
    t.stop()


@pytest.fixture
def rig(proxy_factory, tap, tls_files) -> Rig:
    return start_rig(proxy_factory, tap, tls_files.ca_cert, access=ACCESS, groups=GROUPS)


@pytest.fixture
def secret(rig: Rig) -> tuple[str, str]:
    """(source repository, digest) of a blob only admins may pull, pushed by the admin."""
    source = unique("vault/secret")
    digest = push_blob(rig.client, source, b"the vault secret " + os.urandom(16), READER)
    assert rig.client.request("GET", f"/v2/{source}/blobs/{digest}").status == 401  # anonymous: no
    denied = rig.client.request("GET", f"/v2/{source}/blobs/{digest}", [("Authorization", MARK)])
    assert denied.status == 403  # and not mark either
    return source, digest


def multipart(boundary: str, fields: dict[str, str]) -> bytes:
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n' for k, v in fields.items()]
    return ("".join(parts) + f"--{boundary}--\r\n").encode()


def form_body(kind: str, fields: dict[str, str]) -> tuple[str, bytes]:
    """(Content-Type, body) that Go's ParseMultipartForm / ParsePostForm would read ``fields`` from."""
    urlencoded = "&".join(f"{k}={v}" for k, v in fields.items()).encode()
    if kind == "urlencoded":
        return URLENCODED, urlencoded
    if kind == "urlencoded-odd":
        return "Application/X-WWW-Form-URLencoded; charset=x", urlencoded
    if kind == "multipart":
        return "multipart/form-data; boundary=b", multipart("b", fields)
    assert kind == "multipart-long"
    boundary = "----WebKitFormBoundary" + os.urandom(6).hex()
    return f"Multipart/Form-Data; boundary={boundary}", multipart(boundary, fields)


def assert_not_readable(rig: Rig, repo: str, digest: str) -> None:
    """The vault blob is not in ``repo``: the registry (reached for this pull) does not know it there."""
    assert rig.client.request("GET", f"/v2/{repo}/blobs/{digest}").status == 404
    assert rig.client.request("HEAD", f"/v2/{repo}/blobs/{digest}", [("Authorization", MARK)]).status == 404


@pytest.mark.parametrize("kind", ["urlencoded", "urlencoded-odd", "multipart", "multipart-long"])
def test_a_form_mount_in_the_body_is_refused_and_never_forwarded(rig, secret, kind):
    source, digest = secret
    target = unique("mark-owned/repo")
    content_type, body = form_body(kind, {"mount": digest, "from": source})
    rig.tap.clear()
    reply = rig.client.request("POST", f"/v2/{target}/blobs/uploads/",
                               [("Authorization", MARK), ("Content-Type", content_type)], body=body)
    assert reply.status == 415, (reply.status, reply.body)
    assert error_code(reply) == "UNSUPPORTED" and source.encode() not in reply.body
    assert rig.nothing_forwarded(), rig.tap.requests()
    assert_not_readable(rig, target, digest)


def test_a_token_scoped_to_the_target_cannot_carry_a_form_mount(rig, secret):
    source, digest = secret
    target = unique("mark-owned/tok")
    tok = token(rig.client, [f"repository:{target}:pull,push"], MARK)
    rig.tap.clear()
    for kind in ("urlencoded", "multipart"):
        content_type, body = form_body(kind, {"mount": digest, "from": source})
        reply = rig.client.request("POST", f"/v2/{target}/blobs/uploads/",
                                   [*bearer(tok), ("Content-Type", content_type)], body=body)
        assert reply.status == 415, (kind, reply.status, reply.body)
    assert rig.nothing_forwarded(), rig.tap.requests()
    # the same token still opens an ordinary upload: only the form body was the problem
    opened = rig.client.request("POST", f"/v2/{target}/blobs/uploads/", bearer(tok), body=b"")
    assert opened.status == 202, (opened.status, opened.body)
    assert_not_readable(rig, target, digest)


def test_form_bodies_on_patch_and_put_of_an_upload_are_refused(rig, secret):
    source, digest = secret
    target = unique("mark-owned/upload")
    data = os.urandom(2048)
    own = "sha256:" + hashlib.sha256(data).hexdigest()
    started = rig.client.request("POST", f"/v2/{target}/blobs/uploads/", [("Authorization", MARK)], body=b"")
    assert started.status == 202, started.body
    upload = path_of(started.header("Location") or "")
    rig.tap.clear()
    cases = [
        ("PATCH", upload, *form_body("multipart", {"mount": digest, "from": source})),
        ("PATCH", upload, *form_body("urlencoded-odd", {"_state": "x"})),
        ("PUT", upload, *form_body("urlencoded", {"digest": own})),
        ("PUT", upload, *form_body("multipart", {"digest": own})),
    ]
    for method, path, content_type, body in cases:
        reply = rig.client.request(method, path, [("Authorization", MARK), ("Content-Type", content_type)],
                                   body=body)
        assert reply.status == 415, (method, content_type, reply.status, reply.body)
    # two Content-Type lines: Go reads the first, others the last; neither is guessed
    for types in (("application/octet-stream", URLENCODED), (URLENCODED, "application/octet-stream")):
        reply = rig.client.request("PATCH", upload, [("Authorization", MARK), *[("Content-Type", t) for t in types]],
                                   body=data)
        assert reply.status == 400 and error_code(reply) == "UNSUPPORTED", (types, reply.status, reply.body)
    assert rig.nothing_forwarded(), rig.tap.requests()
    # the upload session is intact: the ordinary data PUT completes it
    sep = "&" if "?" in upload else "?"
    done = rig.client.request("PUT", f"{upload}{sep}digest={own.replace(':', '%3A')}",
                              [("Authorization", MARK), ("Content-Type", "application/octet-stream")], body=data)
    assert done.status == 201, (done.status, done.body)
    assert rig.client.request("GET", f"/v2/{target}/blobs/{own}").body == data
    assert_not_readable(rig, target, digest)


def test_real_clients_still_push_and_the_vault_stays_closed(rig, secret, skopeo, oci_image):
    source, digest = secret
    target = unique("mark-owned/app")
    image = oci_image(layers=1, files_per_layer=1, file_size=4096)
    must(skopeo.push(image.ref, f"{rig.proxy.host_port}/{target}:v1", dest_creds="mark:pusherpwd"))
    tiny = push_tiny(rig.client, target, "tiny", auth=MARK)
    got = rig.client.request("GET", f"/v2/{target}/manifests/{tiny.digest}",
                             [("Accept", "application/vnd.oci.image.manifest.v1+json")])
    assert got.status == 200
    pushed = [r for r in rig.tap.requests() if r.method in ("POST", "PUT", "PATCH")]
    assert pushed and all("form" not in ",".join(r.header_values("Content-Type")).lower() for r in pushed)
    # the query-string mount is judged (403: no pull on the vault); the body one is refused unread (415)
    query = rig.client.request("POST", f"/v2/{target}/blobs/uploads/?mount={digest}&from={source}",
                               [("Authorization", MARK)], body=b"")
    assert query.status == 403, (query.status, query.body)
    content_type, body = form_body("urlencoded", {"mount": digest, "from": source})
    rig.tap.clear()
    smuggled = rig.client.request("POST", f"/v2/{target}/blobs/uploads/",
                                  [("Authorization", MARK), ("Content-Type", content_type)], body=body)
    assert smuggled.status == 415 and rig.nothing_forwarded(), (smuggled.status, smuggled.body)
    assert_not_readable(rig, target, digest)
