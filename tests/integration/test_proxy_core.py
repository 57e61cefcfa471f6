"""The core proxy against the real registry, over real TLS (issue: the seed's policy).

Each test drives ``python -m proxy serve`` with raw HTTP so that what is sent
is exactly what the test says; a TCP tap between proxy and registry proves
what reached the backend.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time

from tests.support.httpclient import Client, basic, put_blob, upload_blob

MARK = basic("mark", "pusherpwd")
READER = basic("reader", "readerpwd")
VERSION = "Docker-Distribution-Api-Version"


def client_for(proxy, tls_files) -> Client:
    return Client(proxy.url, tls_files.ca_cert)


def push_blob(client: Client, repo: str, data: bytes, auth: str = MARK) -> str:
    return put_blob(client, repo, data, auth)


def push_manifest(client: Client, repo: str, tag: str, auth: str = MARK) -> tuple[str, bytes]:
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})
    cdigest = push_blob(client, repo, config.encode(), auth)
    layer = os.urandom(1000)
    ldigest = push_blob(client, repo, layer, auth)
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest,
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ldigest,
                    "size": len(layer)}],
    }).encode()
    reply = client.request("PUT", f"/v2/{repo}/manifests/{tag}",
                           [("Authorization", auth), ("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
                           body=manifest)
    assert reply.status == 201, reply.body
    return "sha256:" + hashlib.sha256(manifest).hexdigest(), manifest


def test_monolithic_upload_pull_head_and_range(proxy_factory, tls_files):
    client = client_for(proxy_factory(), tls_files)
    data = os.urandom(300_000)
    digest = push_blob(client, "core/mono", data)
    got = client.request("GET", f"/v2/core/mono/blobs/{digest}")
    assert got.status == 200 and got.body == data
    head = client.request("HEAD", f"/v2/core/mono/blobs/{digest}")
    assert head.status == 200 and head.header("Content-Length") == str(len(data)) and head.body == b""
    part = client.request("GET", f"/v2/core/mono/blobs/{digest}", [("Range", "bytes=100-199")])
    assert part.status == 206 and part.body == data[100:200]


def test_chunked_patch_upload_and_manifest(proxy_factory, tls_files, registry):
    client = client_for(proxy_factory(), tls_files)
    data = [os.urandom(100_000) for _ in range(5)]
    digest = "sha256:" + hashlib.sha256(b"".join(data)).hexdigest()
    done = upload_blob(client, "core/chunked", MARK, iter(data), digest)
    assert done.status == 201, done.body
    direct = Client(registry.url).request("GET", f"/v2/core/chunked/blobs/{digest}")
    assert direct.body == b"".join(data)
    mdigest, manifest = push_manifest(client, "core/chunked", "v1")
    accepts = [("Accept", "application/vnd.docker.distribution.manifest.v2+json"),
               ("Accept", "application/vnd.oci.image.manifest.v1+json"),
               ("Accept", "application/vnd.docker.distribution.manifest.list.v2+json")]
    got = client.request("GET", "/v2/core/chunked/manifests/v1", accepts)
    assert got.status == 200 and got.body == manifest
    assert got.header("Docker-Content-Digest") == mdigest


def test_location_points_at_proxy_even_when_client_spoofs(proxy_factory, tls_files):
    proxy = proxy_factory()
    client = client_for(proxy, tls_files)
    reply = client.request("POST", "/v2/core/loc/blobs/uploads/", [
        ("Authorization", MARK), ("X-Forwarded-Host", "evil.example:1"), ("X-Forwarded-Proto", "http"),
        ("Forwarded", "host=evil2.example;proto=http"), ("X-Real-IP", "6.6.6.6")], body=b"")
    assert reply.status == 202
    location = reply.header("Location") or ""
    assert location.startswith(f"https://{proxy.host_port}/v2/core/loc/blobs/uploads/"), location


def test_version_header_exactly_once_and_errors_are_json(proxy_factory, tls_files):
    client = client_for(proxy_factory(), tls_files)
    push_manifest(client, "core/ver", "v1")
    cases = [
        ("GET", "/v2/", [("Authorization", MARK)], 200),  # proxied
        ("HEAD", "/v2/core/ver/manifests/v1", [("Accept", "application/vnd.oci.image.manifest.v1+json")], 200),
        ("GET", "/v2/", [], 401),
        ("POST", "/v2/core/ver/blobs/uploads/", [], 401),
        ("POST", "/v2/core/ver/blobs/uploads/", [("Authorization", READER)], 403),
        ("GET", "/elsewhere", [], 404),
        ("GET", "/v2/core/ver/nothing/here", [], 404),
        ("OPTIONS", "/v2/", [], 405),
        ("FOO", "/v2/", [], 405),
        ("GET", "/v2/core/%2e%2e/x/manifests/v1", [], 400),
    ]
    for method, path, headers, status in cases:
        reply = client.request(method, path, headers)
        assert reply.status == status, (method, path, reply.status, reply.body)
        assert reply.all(VERSION) == ["registry/2.0"], (method, path, reply.headers)
        if status >= 400 and method != "HEAD":
            assert reply.header("Content-Type").startswith("application/json"), (method, path)
            error = reply.json()["errors"][0]
            assert error["code"] and error["message"]


def test_refusals_say_what_to_do(proxy_factory, tls_files):
    proxy = proxy_factory()
    client = client_for(proxy, tls_files)
    anon = client.request("POST", "/v2/core/refuse/blobs/uploads/", body=b"")
    assert anon.status == 401 and anon.json()["errors"][0]["code"] == "UNAUTHORIZED"
    assert "docker login" in anon.json()["errors"][0]["message"]
    assert anon.header("WWW-Authenticate").startswith("Bearer realm=")
    reader = client.request("POST", "/v2/core/refuse/blobs/uploads/", [("Authorization", READER)], body=b"")
    assert reader.status == 403 and reader.json()["errors"][0]["code"] == "DENIED"
    assert "pusher" in reader.json()["errors"][0]["message"]
    wrong = client.request("GET", "/v2/", [("Authorization", basic("mark", "nope"))])
    assert wrong.status == 401


def test_basic_mode_ping_challenges_and_checks_login(proxy_factory, tls_files):
    client = client_for(proxy_factory(challenge="basic"), tls_files)
    ping = client.request("GET", "/v2/")
    assert ping.status == 401 and ping.header("WWW-Authenticate") == 'Basic realm="basic-realm"'
    assert client.request("GET", "/v2/", [("Authorization", MARK)]).status == 200
    assert client.request("GET", "/v2/", [("Authorization", basic("mark", "bad"))]).status == 401


def test_reads_ignore_any_authorization(proxy_factory, tls_files):
    client = client_for(proxy_factory(), tls_files)
    push_manifest(client, "core/anon", "v1")
    for auth in ("Basic Og==", basic("mark", "stale"), "garbage", "Bearer not.a.token", basic("nobody", "x")):
        reply = client.request("GET", "/v2/core/anon/manifests/v1",
                               [("Authorization", auth), ("Accept", "application/vnd.oci.image.manifest.v1+json")])
        assert reply.status == 200, (auth, reply.status)


def test_backend_never_sees_refused_methods_or_credentials(tapped, tls_files):
    proxy, tap = tapped
    client = client_for(proxy, tls_files)
    for method, path in (("OPTIONS", "/v2/"), ("FOO", "/v2/a/blobs/uploads/"), ("delete", "/v2/a/manifests/x"),
                         ("TRACE", "/v2/"), ("POST", "/v2/a/blobs/uploads/"), ("GET", "/v2/a/../b/tags/list")):
        reply = client.request(method, path, [("Authorization", READER)])
        assert reply.status >= 400
    assert tap.requests() == [], [r.method for r in tap.requests()]
    # and what is forwarded carries no credentials, keeps every Accept, and our forwarding headers
    push_manifest(client, "core/tap", "v1")
    client.request("GET", "/v2/core/tap/manifests/v1", [
        ("Authorization", MARK), ("Accept", "a/one"), ("Accept", "b/two"), ("Proxy-Authorization", "x"),
        ("X-Forwarded-Host", "evil"), ("Forwarded", "host=evil")])
    seen = tap.requests()
    assert seen and all(not r.has_header("Authorization") for r in seen)
    assert all(not r.has_header("Proxy-Authorization") and not r.has_header("Forwarded") for r in seen)
    last = seen[-1]
    assert last.method == "GET" and last.header_values("Accept") == ["a/one", "b/two"]
    assert last.header_values("X-Forwarded-Host") == [proxy.host_port]
    assert last.header_values("X-Forwarded-Proto") == ["https"]
    assert last.header_values("Host") == [proxy.host_port]
    assert not last.has_header("User-Agent")


def test_path_judged_is_path_forwarded(tapped, tls_files):
    proxy, tap = tapped
    client = client_for(proxy, tls_files)
    push_manifest(client, "core/exact", "v1")
    tap.clear()
    client.request("GET", "/v2/core/exact/tags/list?n=10&last=a")
    assert [r.target for r in tap.requests()] == ["/v2/core/exact/tags/list?n=10&last=a"]


def test_backend_down_gives_502_then_recovers(proxy_factory, tls_files, registry):
    client = client_for(proxy_factory(), tls_files)
    assert client.request("GET", "/v2/_catalog").status == 200
    with registry.stopped():
        down = client.request("GET", "/v2/_catalog")
        assert down.status == 502 and down.json()["errors"][0]["code"] == "UNAVAILABLE"
        assert down.all(VERSION) == ["registry/2.0"]
    assert client.request("GET", "/v2/_catalog").status == 200


def test_backend_read_timeout_gives_504(proxy_factory, tls_files):
    import socket
    import threading

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    accepted = []
    threading.Thread(target=lambda: accepted.append(silent.accept()), daemon=True).start()
    proxy = proxy_factory(backend=f"http://127.0.0.1:{silent.getsockname()[1]}",
                          overrides={"timeouts": {"read": 1, "connect": 1}})
    reply = client_for(proxy, tls_files).request("GET", "/v2/_catalog")
    assert reply.status == 504 and reply.json()["errors"][0]["code"] == "UNAVAILABLE"
    silent.close()


def test_access_log_has_user_but_no_secret(proxy_factory, tls_files):
    proxy = proxy_factory()
    client = client_for(proxy, tls_files)
    client.request("GET", "/v2/", [("Authorization", MARK)])
    client.request("GET", "/v2/", [("Authorization", basic("mark", "wrongsecret"))])
    deadline = time.monotonic() + 15  # the line is written just after the last byte is sent
    while proxy.log_text().count('"GET /v2/ HTTP/1.1"') < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    log = proxy.log_text()
    assert re.search(r'^127\.0\.0\.1 - mark \[[^]]+\] "GET /v2/ HTTP/1\.1" 200 \d+ "-" "-" [\d.]+ms$', log, re.M), log
    for secret in ("pusherpwd", "wrongsecret", MARK.split()[1]):
        assert secret not in log
