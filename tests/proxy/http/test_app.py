"""The request path in-process: route, identify, decide, forward, with the fake registry watching."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable

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
    resp = await world.client.get("/v2/_catalog", headers={"Authorization": "Basic Og=="})
    assert resp.status == 200
    assert (await resp.json()) == {"repositories": ["a", "b"]}
    assert resp.headers.getall(API) == ["registry/2.0"]
    (seen,) = world.backend_saw()
    assert seen.raw_path == "/v2/_catalog"
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
    assert resp.status == 503
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
