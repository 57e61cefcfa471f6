"""The client's Host never shapes a URL it should not (issue 10, case 4), and refusals are not cached.

Realms and upload ``Location`` headers are built from the public origin:
``public_url`` when configured, else the ``Host`` header, and then only a
plain ``hostname[:port]``. A quote, comma, space or slash in it would inject
challenge parameters or point a client elsewhere, so it is a 400 before
anything is built or forwarded.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.authz import (
    MARK,
    READER,
    challenge_params,
    path_of,
    request_with_host,
    start_rig,
    unique,
)
from tests.support.httpclient import basic
from tests.support.tap import Tap
from tests.support.tinyimage import push_tiny

ACCESS = {"pull": "anyone", "push": ["pusher"], "delete": ["pusher"]}
PUBLIC = "https://registry.example.org"
BAD_HOSTS = ['a"b', 'evil.example",error="x', "a,b", "evil.example, other.example", "a b", "a/b",
             "evil.example/x", "evil.example:99999", "[::1", ""]


@pytest.fixture
def tap(registry) -> Iterator[Tap]:
    t = Tap(registry.port).start()
    yield t
    t.stop()


def _realm(reply) -> str:
    return challenge_params(reply.header("WWW-Authenticate") or "")["realm"]


def test_a_host_that_is_not_a_hostname_is_refused_before_anything_is_built(proxy_factory, tap, tls_files):
    rig = start_rig(proxy_factory, tap, tls_files.ca_cert, access=ACCESS)
    repo = unique("host/app")
    push_tiny(rig.client, repo, "v1", auth=MARK)
    rig.tap.clear()
    for host in BAD_HOSTS:
        for method, path, headers in (("GET", "/v2/", []), ("GET", f"/v2/{repo}/tags/list", []),
                                      ("POST", f"/v2/{repo}/blobs/uploads/", [("Authorization", MARK)]),
                                      ("GET", "/token?service=x&scope=repository:a:pull", [])):
            reply = request_with_host(rig.client, method, path, [host], headers)
            assert reply.status == 400, (host, method, path, reply.status, reply.body)
            assert reply.header("WWW-Authenticate") is None and reply.header("Location") is None
            assert reply.json()["errors"][0]["code"] == "UNSUPPORTED"
            assert (not host or host.encode() not in reply.body), reply.body
    two = request_with_host(rig.client, "GET", f"/v2/{repo}/tags/list", [rig.proxy.host_port, "evil.example"])
    assert two.status == 400, (two.status, two.body)
    assert rig.nothing_forwarded(), rig.tap.requests()
    # a plain hostname[:port] is still what an unconfigured proxy builds its URLs from
    for host in ("registry.internal:5043", "registry.internal", "10.1.2.3:443", "[::1]:5043"):
        ping = request_with_host(rig.client, "GET", "/v2/", [host])
        assert ping.status == 401 and _realm(ping) == f"https://{host}/token", (host, ping.status, ping.body)
    listed = request_with_host(rig.client, "GET", f"/v2/{repo}/tags/list", [rig.proxy.host_port])
    assert listed.status == 200 and listed.json()["tags"] == ["v1"]


def test_public_url_is_used_whatever_host_says(proxy_factory, tap, tls_files):
    rig = start_rig(proxy_factory, tap, tls_files.ca_cert, access=ACCESS, overrides={"public_url": PUBLIC})
    repo = unique("host/pub")
    for host in ("evil.example", 'a"b', "evil.example, x", rig.proxy.host_port):
        ping = request_with_host(rig.client, "GET", "/v2/", [host])
        assert ping.status == 401 and _realm(ping) == f"{PUBLIC}/token", (host, ping.header("WWW-Authenticate"))
        challenged = request_with_host(rig.client, "POST", f"/v2/{repo}/blobs/uploads/", [host])
        assert challenged.status == 401 and _realm(challenged) == f"{PUBLIC}/token"
        assert "evil" not in (challenged.header("WWW-Authenticate") or "")
    rig.tap.clear()
    started = request_with_host(rig.client, "POST", f"/v2/{repo}/blobs/uploads/", ["evil.example"],
                                [("Authorization", MARK)])
    assert started.status == 202, (started.status, started.body)
    location = started.header("Location") or ""
    assert location.startswith(f"{PUBLIC}/v2/{repo}/blobs/uploads/"), location
    seen = rig.tap.requests()
    assert [r.method for r in seen] == ["POST"]
    assert seen[0].header_values("Host") == ["registry.example.org"]
    assert seen[0].header_values("X-Forwarded-Host") == ["registry.example.org"]
    assert seen[0].header_values("X-Forwarded-Proto") == ["https"]
    # the Location is usable: its path on this proxy continues the upload
    patched = request_with_host(rig.client, "PATCH", path_of(location), ["evil.example"],
                                [("Authorization", MARK), ("Content-Type", "application/octet-stream")], b"data")
    assert patched.status == 202 and (patched.header("Location") or "").startswith(f"{PUBLIC}/v2/{repo}/")


def test_refusals_carry_cache_control_no_store(proxy_factory, tap, tls_files):
    rig = start_rig(proxy_factory, tap, tls_files.ca_cert, access=ACCESS,
                    overrides={"throttle": {"failures": 2, "window": 300}})
    upload = f"/v2/{unique('host/cache')}/blobs/uploads/"
    refusals = {
        "anonymous push": rig.client.request("POST", upload, body=b""),
        "ping": rig.client.request("GET", "/v2/"),
        "reader push": rig.client.request("POST", upload, [("Authorization", READER)], body=b""),
        "bad token": rig.client.request("POST", upload, [("Authorization", "Bearer not.a.token")], body=b""),
        "bad password at the realm": rig.client.request("GET", "/token", [("Authorization", basic("mark", "x"))]),
    }
    assert {k: r.status for k, r in refusals.items()} == {
        "anonymous push": 401, "ping": 401, "reader push": 403, "bad token": 401, "bad password at the realm": 401}
    statuses = []
    for _ in range(5):  # failures for mark from this address: the throttle answers 429 within a few
        reply = rig.client.request("GET", "/v2/", [("Authorization", basic("mark", "wrong"))])
        statuses.append(reply.status)
        refusals[f"failed login {len(statuses)}"] = reply
        if reply.status == 429:
            break
    assert statuses[-1] == 429, statuses
    for what, reply in refusals.items():
        assert reply.all("Cache-Control") == ["no-store"], (what, reply.status, reply.headers)
    assert rig.nothing_forwarded(), rig.tap.requests()
