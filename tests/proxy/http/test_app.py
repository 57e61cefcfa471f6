"""The request path in-process: route, identify, decide, forward, with the fake registry watching."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import ClientResponse
from yarl import URL

from tests.proxy.http.conftest import World

MakeWorld = Callable[..., Awaitable[World]]
UPLOADS = "/v2/team/app/blobs/uploads/"
API = "Docker-Distribution-Api-Version"


async def raw(world: World, method: str, path: str, headers: dict[str, str] | None = None) -> ClientResponse:
    """Send ``path`` exactly as written (the test client would decode and normalise it)."""
    url = URL(str(world.client.make_url("/")).rstrip("/") + path, encoded=True)
    return await world.client.session.request(method, url, headers=headers)


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


async def test_anonymous_pull_is_forwarded_without_credentials(make_world: MakeWorld) -> None:
    world = await make_world()
    resp = await world.client.get("/v2/a/tags/list", headers={"Authorization": "Basic Og=="})  # podman's empty login
    assert resp.status == 200
    assert resp.headers.getall(API) == ["registry/2.0"]
    resp = await world.client.get("/v2/_catalog")
    assert resp.status == 200
    assert (await resp.json()) == {"repositories": ["a", "b"]}
    assert [s.raw_path for s in world.backend_saw()] == ["/v2/a/tags/list", "/v2/_catalog"]
    assert all("authorization" not in s.headers for s in world.backend_saw())


async def test_the_catalog_checks_credentials_that_are_sent(make_world: MakeWorld) -> None:
    """Open to anyone, but listed by the caller's pull rights: a wrong password is not silently anonymous."""
    world = await make_world()
    resp = await world.client.get("/v2/_catalog", headers=basic("mark", "wrong"))
    assert resp.status == 401
    assert resp.headers["Cache-Control"] == "no-store"
    assert world.backend_saw() == []
    resp = await world.client.get("/v2/_catalog", headers=basic("mark", "pusherpwd"))
    assert resp.status == 200
    (seen,) = world.backend_saw()
    assert "authorization" not in seen.headers


async def test_push_without_credentials_is_challenged_and_never_forwarded(make_world: MakeWorld) -> None:
    world = await make_world()
    resp = await world.client.post(UPLOADS)
    assert resp.status == 401
    challenge = resp.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="http://127.0.0.1:')
    assert 'scope="repository:team/app:pull,push"' in challenge
    assert (await resp.json())["errors"][0]["code"] == "UNAUTHORIZED"
    assert resp.headers.getall(API) == ["registry/2.0"]
    assert world.backend_saw() == []


async def test_pusher_pushes_and_location_is_made_public(make_world: MakeWorld) -> None:
    world = await make_world()
    resp = await world.client.post(UPLOADS, headers=basic("mark", "pusherpwd"))
    assert resp.status == 202
    public = f"http://{world.client.host}:{world.client.port}"
    assert resp.headers["Location"].startswith(public + UPLOADS)
    (seen,) = world.backend_saw()
    assert "authorization" not in seen.headers
    assert seen.headers["x-forwarded-proto"] == ["http"]


async def test_reader_is_denied_with_a_message_naming_the_group(make_world: MakeWorld) -> None:
    world = await make_world()
    resp = await world.client.post(UPLOADS, headers=basic("reader", "readerpwd"))
    assert resp.status == 403
    error = (await resp.json())["errors"][0]
    assert error["code"] == "DENIED" and "group pusher" in error["message"]
    assert world.backend_saw() == []


async def test_wrong_password_is_401_on_the_ping(make_world: MakeWorld) -> None:
    world = await make_world()
    resp = await world.client.get("/v2/", headers=basic("mark", "nope"))
    assert resp.status == 401
    assert "invalid username or password" in (await resp.json())["errors"][0]["message"]
    assert (await world.client.get("/v2/", headers=basic("mark", "pusherpwd"))).status == 200


async def test_unknown_routes_and_methods_are_refused_here(make_world: MakeWorld) -> None:
    world = await make_world()
    cases = [("GET", "/x", 404, None), ("TRACE", "/v2/", 405, "GET, HEAD, POST, PUT, PATCH, DELETE"),
             ("OPTIONS", "/v2/", 405, "GET, HEAD, POST, PUT, PATCH, DELETE"),
             ("POST", "/v2/_catalog", 405, "GET, HEAD, POST, PUT, PATCH, DELETE"),
             ("GET", "/v2/a/%2e%2e/b/tags/list", 400, None), ("GET", "/v2/a/unknown", 404, None),
             ("PUT", "/token", 405, "GET, POST")]
    for method, path, status, allow in cases:
        resp = await raw(world, method, path)
        assert resp.status == status, (method, path)
        assert resp.headers.getall(API) == ["registry/2.0"]
        assert resp.headers.get("Allow") == allow
        assert resp.content_type == "application/json"
    assert world.backend_saw() == []


async def test_token_endpoint_is_matched_on_the_raw_path(make_world: MakeWorld) -> None:
    world = await make_world()
    resp = await world.client.get("/token?service=test&scope=repository:team/app:pull,push",
                                  headers=basic("mark", "pusherpwd"))
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    token = (await resp.json())["token"]
    resp = await world.client.post(UPLOADS, headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 202
    encoded = await raw(world, "GET", "/tok%65n?service=test", basic("mark", "pusherpwd"))
    assert encoded.status == 404
    assert "token" not in await encoded.text()


async def test_maintenance_refuses_writes_before_auth_and_lets_reads_through(make_world: MakeWorld) -> None:
    world = await make_world()
    (world.config_path.parent / "maintenance").write_text("moving storage\n")
    resp = await world.client.post(UPLOADS)  # no credentials: maintenance is said first
    assert resp.status == 423
    assert resp.headers["Retry-After"] == "60"
    assert "moving storage" in (await resp.json())["errors"][0]["message"]
    assert (await world.client.get("/v2/_catalog")).status == 200
    assert [s.method for s in world.backend_saw()] == ["GET"]


async def test_requests_in_flight_return_to_zero(make_world: MakeWorld) -> None:
    from proxy.http.keys import STATS

    world = await make_world()
    await world.client.post(UPLOADS, headers=basic("mark", "pusherpwd"))
    await world.client.get("/v2/_catalog")
    stats = world.client.app[STATS]
    assert (stats.requests_in_flight, stats.writes_in_flight) == (0, 0)


# ------------------------------------------------------------------ what is refused before the gate


async def test_refusals_about_credentials_are_no_store_and_others_are_not(make_world: MakeWorld) -> None:
    world = await make_world()
    assert (await world.client.post(UPLOADS)).headers["Cache-Control"] == "no-store"  # 401
    denied = await world.client.post(UPLOADS, headers=basic("reader", "readerpwd"))
    assert (denied.status, denied.headers["Cache-Control"]) == (403, "no-store")
    assert "Cache-Control" not in (await raw(world, "GET", "/x")).headers  # 404
    assert world.backend_saw() == []


async def test_a_read_of_an_invalid_reference_is_404_and_a_write_400_neither_forwarded(make_world: MakeWorld) -> None:
    world = await make_world()
    cases = [("GET", "/v2/a/manifests/-tag", 404, "MANIFEST_UNKNOWN"),
             ("HEAD", "/v2/a/manifests/-tag", 404, None),
             ("GET", "/v2/a/blobs/latest", 404, "BLOB_UNKNOWN"),
             ("GET", "/v2/a/referrers/latest", 404, "MANIFEST_UNKNOWN"),
             ("PUT", "/v2/a/manifests/-tag", 400, "TAG_INVALID"),
             ("DELETE", "/v2/a/blobs/latest", 400, "DIGEST_INVALID")]
    for method, path, status, code in cases:
        resp = await raw(world, method, path, basic("mark", "pusherpwd"))
        assert resp.status == status, (method, path)
        if code is not None:
            assert (await resp.json())["errors"][0]["code"] == code
    assert world.backend_saw() == []


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", "multipart/form-data; boundary=b",
                                          "Application/X-WWW-Form-Urlencoded"])
async def test_a_form_body_on_a_write_is_415_and_never_forwarded(make_world: MakeWorld, content_type: str) -> None:
    world = await make_world()
    headers = {**basic("mark", "pusherpwd"), "Content-Type": content_type}
    resp = await world.client.post(UPLOADS, data=b"from=secret/base&mount=x", headers=headers)
    assert resp.status == 415
    assert (await resp.json())["errors"][0]["code"] == "UNSUPPORTED"
    assert world.backend_saw() == []
    ok = await world.client.post(UPLOADS, data=b"", headers={**basic("mark", "pusherpwd"),
                                                             "Content-Type": "application/octet-stream"})
    assert ok.status == 202


async def test_the_token_endpoint_still_takes_its_form(make_world: MakeWorld) -> None:
    world = await make_world()
    resp = await world.client.post("/token", data={"grant_type": "password", "username": "mark",
                                                   "password": "pusherpwd", "service": "test",
                                                   "scope": "repository:team/app:pull,push"})
    assert resp.status == 200 and (await resp.json())["access_token"]


async def send(world: World, head: str) -> tuple[int, bytes]:
    """One request written byte for byte (no client library normalises the Host): status and body."""
    reader, writer = await asyncio.open_connection(world.client.host, world.client.port)
    try:
        writer.write(head.encode("latin-1"))
        await writer.drain()
        answer = await reader.read()
    finally:
        writer.close()
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


BAD_HOSTS = ['evil"x', "a,b", "a b", "a/b", "[::1", "a:99999", 'h",scope="registry:catalog:*', "a@b"]


@pytest.mark.parametrize("host", BAD_HOSTS)
async def test_a_host_that_is_not_one_hostname_is_400_and_never_forwarded(make_world: MakeWorld, host: str) -> None:
    world = await make_world()
    for method, path in (("POST", UPLOADS), ("GET", "/v2/"), ("GET", "/token?service=test")):
        status, body = await send(world, f"{method} {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\n"
                                         "Connection: close\r\n\r\n")
        assert status == 400, (path, host)
        error = json.loads(body)["errors"][0]
        assert error["code"] == "UNSUPPORTED" and "Host" in error["message"]  # the proxy's check
        assert host not in error["message"]  # never echoed
    assert world.backend_saw() == []


@pytest.mark.parametrize(("version", "hosts"), [("1.1", ["a", "b"]), ("1.1", ["a", "a"]), ("1.1", []),
                                                ("1.0", ["a", "b"]), ("1.0", [])])
async def test_two_or_no_host_headers_are_400_and_never_forwarded(
    make_world: MakeWorld, version: str, hosts: list[str]
) -> None:
    """aiohttp's parser refuses some of these itself (its own text there; JSON in production via the seams)."""
    world = await make_world()
    lines = "".join(f"Host: {h}\r\n" for h in hosts)
    status, _ = await send(world, f"POST {UPLOADS} HTTP/{version}\r\n{lines}Content-Length: 0\r\n"
                                  "Connection: close\r\n\r\n")
    assert status == 400
    assert world.backend_saw() == []


async def test_an_http10_request_without_host_is_refused_by_the_proxy_itself(make_world: MakeWorld) -> None:
    world = await make_world()
    status, body = await send(world, "GET /v2/a/tags/list HTTP/1.0\r\n\r\n")
    assert status == 400 and json.loads(body)["errors"][0]["code"] == "UNSUPPORTED"
    assert world.backend_saw() == []
    public = await make_world(public_url="https://registry.example.org")  # with public_url no Host is needed
    status, _ = await send(public, "GET /v2/a/tags/list HTTP/1.0\r\n\r\n")
    assert status == 200


async def test_public_url_is_what_every_url_is_built_from(make_world: MakeWorld) -> None:
    world = await make_world(public_url="https://registry.example.org")
    for host_lines in (["attacker.example"], ['evil"x']):  # the Host is neither used nor judged
        hosts = "".join(f"Host: {h}\r\n" for h in host_lines)
        status, body = await send(world, f"POST {UPLOADS} HTTP/1.1\r\n{hosts}Content-Length: 0\r\n"
                                         "Connection: close\r\n\r\n")
        assert status == 401 and b"attacker" not in body and b"evil" not in body
    resp = await world.client.post(UPLOADS)
    assert resp.headers["WWW-Authenticate"].startswith('Bearer realm="https://registry.example.org/token",')
    pushed = await world.client.post(UPLOADS, headers=basic("mark", "pusherpwd"))
    assert pushed.status == 202
    (seen,) = world.backend_saw()  # what distribution builds its URLs from, whatever the client's Host was
    assert (seen.headers["host"], seen.headers["x-forwarded-host"], seen.headers["x-forwarded-proto"]) == (
        ["registry.example.org"], ["registry.example.org"], ["https"])
