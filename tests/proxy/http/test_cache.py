"""The digest cache in the request path, in-process: the real app before a registry that counts what it serves.

What must hold: the right bytes and headers from memory, never by tag, never
for a ``Range``, only for an ``Accept`` that names the type, keyed by
repository, only after the gate (a private repository stays private), gone
on a ``DELETE`` the registry accepted, and never a body that does not hash
to its digest.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from aiohttp import ClientResponse, web

from proxy.http.keys import LIVE
from tests.proxy.http.conftest import FakeRegistry, Seen, World

MakeWorld = Callable[..., Awaitable[World]]
OCI = "application/vnd.oci.image.manifest.v1+json"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"
ACCESS = {"pull": "anyone", "push": ["pusher"], "delete": ["pusher"],
          "repositories": [{"match": "private/**", "pull": "users"}]}
MANIFEST = b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}'
CONFIG = b'{"architecture":"amd64","os":"linux"}'
# what the proxy answers itself on every response, or what is made fresh per answer
OWN = {"date", "server", "docker-distribution-api-version"}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


MARK = basic("mark", "pusherpwd")


@dataclass
class ContentRegistry(FakeRegistry):
    """Serves manifests and blobs by digest (and a tag) as distribution does; deletes answer 202."""

    manifests: dict[tuple[str, str], tuple[str, bytes]] = field(default_factory=dict)
    blobs: dict[tuple[str, str], bytes] = field(default_factory=dict)
    lie: bool = False  # answer every blob with other bytes under the asked digest

    def put(self, repo: str, body: bytes, media: str = OCI, tag: str | None = None) -> str:
        self.manifests[(repo, sha(body))] = (media, body)
        if tag:
            self.manifests[(repo, tag)] = (media, body)
        return sha(body)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(Seen(request.method, request.raw_path, {k.lower(): [v] for k, v in request.headers.items()},
                              "", 0))
        if self.delay:
            await asyncio.sleep(self.delay)
        repo, kind, ref = _split(request.path)
        if request.method == "DELETE":  # by the path alone, query or not, as distribution does
            table = self.manifests if kind == "manifests" else self.blobs
            return web.Response(status=202 if table.pop((repo, ref), None) is not None else 404)
        if kind == "manifests":
            found = self.manifests.get((repo, ref))
            if found is None or OCI not in request.headers.get("Accept", ""):  # as 2.8 answers OCI by digest
                return web.json_response({"errors": [{"code": "MANIFEST_UNKNOWN"}]}, status=404)
            media, body = found
            return _answer(body, media, sha(body), cache_control=None)
        body = self.blobs.get((repo, ref))
        if body is None:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN"}]}, status=404)
        if self.lie:
            body = b"X" * len(body)
        if "Range" in request.headers:
            return web.Response(status=206, body=body[:4], headers={"Content-Range": f"bytes 0-3/{len(body)}"})
        return _answer(body, "application/octet-stream", ref, cache_control="max-age=31536000")


def _split(path: str) -> tuple[str, str, str]:
    head, kind, ref = path.removeprefix("/v2/").rsplit("/", 2)
    return head, kind, ref


def _answer(body: bytes, media: str, digest: str, cache_control: str | None) -> web.Response:
    headers = {"Content-Type": media, "Docker-Content-Digest": digest, "Etag": f'"{digest}"',
               "X-Content-Type-Options": "nosniff", "Docker-Distribution-Api-Version": "registry/2.0"}
    if cache_control:
        headers["Cache-Control"] = cache_control
    return web.Response(body=body, headers=headers)


def backend_saw(world: World, method: str, path: str) -> int:
    return sum(1 for s in world.backend.seen if s.method == method and s.raw_path == path)


def comparable(resp: ClientResponse) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in resp.headers.items() if k.lower() not in OWN)


async def world_with(make_world: MakeWorld, **config: object) -> tuple[World, ContentRegistry]:
    backend = ContentRegistry()
    world = await make_world(backend=backend, access=ACCESS, **config)
    return world, backend


async def test_a_manifest_by_digest_is_answered_from_memory_with_the_same_bytes_and_headers(
        make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    digest = backend.put("team/app", MANIFEST)
    path = f"/v2/team/app/manifests/{digest}"
    first = await world.client.get(path, headers={"Accept": OCI})
    first_body = await first.read()
    second = await world.client.get(path, headers={"Accept": f"{DOCKER}, {OCI}"})
    assert (first.status, second.status) == (200, 200)
    assert await second.read() == first_body == MANIFEST
    assert comparable(second) == comparable(first)
    for resp in (first, second):
        assert resp.headers["Content-Type"] == OCI
        assert resp.headers["Docker-Content-Digest"] == digest
        assert resp.headers["Content-Length"] == str(len(MANIFEST))
        assert resp.headers["Etag"] == f'"{digest}"'
        assert resp.headers.getall("Docker-Distribution-Api-Version") == ["registry/2.0"]
        assert "Date" in resp.headers
    head = await world.client.head(path, headers={"Accept": OCI})  # from what the GET filled
    assert head.status == 200 and await head.read() == b""
    assert comparable(head) == comparable(first)
    assert backend_saw(world, "GET", path) == 1 and backend_saw(world, "HEAD", path) == 0


async def test_a_config_blob_is_answered_from_memory_and_a_head_too(make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    backend.blobs[("team/app", sha(CONFIG))] = CONFIG
    path = f"/v2/team/app/blobs/{sha(CONFIG)}"
    first = await world.client.get(path)
    assert first.status == 200 and await first.read() == CONFIG
    again = await world.client.get(path)
    assert again.status == 200 and await again.read() == CONFIG
    head = await world.client.head(path)
    assert head.status == 200 and head.headers["Content-Length"] == str(len(CONFIG))
    assert comparable(again) == comparable(first) == comparable(head)
    assert again.headers["Cache-Control"] == "max-age=31536000"
    assert backend_saw(world, "GET", path) == 1 and backend_saw(world, "HEAD", path) == 0
    stats = world.client.app[LIVE].runtime.cache.store.counters
    assert (stats.hits, stats.stored) == (2, 1)


async def test_a_body_larger_than_one_write_is_streamed_whole_from_memory(make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    blob = bytes(range(256)) * 1024  # 256 KiB: over SMALL, under max_item
    backend.blobs[("team/app", sha(blob))] = blob
    path = f"/v2/team/app/blobs/{sha(blob)}"
    for _ in range(2):
        resp = await world.client.get(path)
        assert resp.status == 200 and await resp.read() == blob
        assert resp.headers["Content-Length"] == str(len(blob))
    assert backend_saw(world, "GET", path) == 1


async def test_nothing_is_kept_by_tag(make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    backend.put("team/app", MANIFEST, tag="v1")
    for _ in range(3):
        resp = await world.client.get("/v2/team/app/manifests/v1", headers={"Accept": OCI})
        assert resp.status == 200 and await resp.read() == MANIFEST
    assert backend_saw(world, "GET", "/v2/team/app/manifests/v1") == 3
    assert world.client.app[LIVE].runtime.cache.store.counters.entries == 0


async def test_a_range_a_conditional_or_a_query_is_never_answered_from_memory(make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    backend.blobs[("team/app", sha(CONFIG))] = CONFIG
    path = f"/v2/team/app/blobs/{sha(CONFIG)}"
    partial = await world.client.get(path, headers={"Range": "bytes=0-3"})
    assert partial.status == 206 and await partial.read() == CONFIG[:4]
    assert world.client.app[LIVE].runtime.cache.store.counters.entries == 0
    assert (await world.client.get(path)).status == 200  # kept now
    again = await world.client.get(path, headers={"Range": "bytes=0-3"})
    assert again.status == 206 and await again.read() == CONFIG[:4]
    conditional = await world.client.get(path, headers={"If-None-Match": f'"{sha(CONFIG)}"'})
    assert conditional.status == 200  # the fake ignores it; the point is that it reached the registry
    assert backend_saw(world, "GET", path) == 4
    assert (await world.client.get(path + "?ns=docker.io")).status == 200  # a query: forwarded as it is
    assert backend_saw(world, "GET", path + "?ns=docker.io") == 1


async def test_a_manifest_is_forwarded_to_a_client_whose_accept_does_not_name_its_type(
        make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    digest = backend.put("team/app", MANIFEST)
    path = f"/v2/team/app/manifests/{digest}"
    assert (await world.client.get(path, headers={"Accept": OCI})).status == 200
    for accept in ("*/*", DOCKER):
        resp = await world.client.get(path, headers={"Accept": accept})
        assert resp.status == 404  # what the registry says to this client, not what memory holds
    assert (await world.client.get(path)).status == 404
    assert backend_saw(world, "GET", path) == 4


async def test_a_body_that_does_not_hash_to_its_digest_is_passed_on_but_never_kept(make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    backend.blobs[("team/app", sha(CONFIG))] = CONFIG
    backend.lie = True
    path = f"/v2/team/app/blobs/{sha(CONFIG)}"
    for _ in range(2):
        resp = await world.client.get(path)
        assert await resp.read() == b"X" * len(CONFIG)  # relayed as it came: the client checks digests itself
    assert backend_saw(world, "GET", path) == 2
    counters = world.client.app[LIVE].runtime.cache.store.counters
    assert (counters.entries, counters.rejected) == (0, 2)
    backend.lie = False
    assert await (await world.client.get(path)).read() == CONFIG
    assert await (await world.client.get(path)).read() == CONFIG
    assert backend_saw(world, "GET", path) == 3


async def test_memory_never_answers_a_caller_who_may_not_pull(make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    digest = backend.put("private/app", MANIFEST)
    path = f"/v2/private/app/manifests/{digest}"
    filled = await world.client.get(path, headers={"Accept": OCI, **MARK})
    assert filled.status == 200 and await filled.read() == MANIFEST
    assert world.client.app[LIVE].runtime.cache.store.counters.entries == 1
    for method in ("GET", "HEAD"):
        anonymous = await world.client.request(method, path, headers={"Accept": OCI})
        assert anonymous.status == 401 and anonymous.headers["Cache-Control"] == "no-store"
        assert MANIFEST not in await anonymous.read()
        wrong = await world.client.request(method, path, headers={"Accept": OCI, **basic("mark", "nope")})
        assert wrong.status == 401
    hit = await world.client.get(path, headers={"Accept": OCI, **basic("reader", "readerpwd")})
    assert hit.status == 200 and await hit.read() == MANIFEST
    assert backend_saw(world, "GET", path) == 1
    assert world.client.app[LIVE].runtime.cache.store.counters.hits == 1


async def test_content_kept_for_one_repository_is_not_an_answer_for_another(make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    backend.blobs[("team/a", sha(CONFIG))] = CONFIG
    assert (await world.client.get(f"/v2/team/a/blobs/{sha(CONFIG)}")).status == 200
    other = await world.client.get(f"/v2/team/b/blobs/{sha(CONFIG)}")
    assert other.status == 404  # never pushed there: the registry's answer, not memory's
    assert backend_saw(world, "GET", f"/v2/team/b/blobs/{sha(CONFIG)}") == 1


@pytest.mark.parametrize("kind", ["manifests", "blobs"])
async def test_a_delete_through_the_proxy_evicts_that_digest(make_world: MakeWorld, kind: str) -> None:
    world, backend = await world_with(make_world)
    if kind == "manifests":
        digest = backend.put("team/app", MANIFEST)
    else:
        digest = sha(CONFIG)
        backend.blobs[("team/app", digest)] = CONFIG
    path = f"/v2/team/app/{kind}/{digest}"
    for _ in range(2):
        assert (await world.client.get(path, headers={"Accept": OCI})).status == 200
    assert backend_saw(world, "GET", path) == 1
    refused = await world.client.delete(path)  # anonymous: 401, not forwarded, nothing evicted
    assert refused.status == 401
    assert world.client.app[LIVE].runtime.cache.store.counters.entries == 1
    deleted = await world.client.delete(path + "?anything=1", headers=MARK)  # the registry ignores a query
    assert deleted.status == 202
    for method in ("GET", "HEAD"):
        gone = await world.client.request(method, path, headers={"Accept": OCI})
        assert gone.status == 404
    # a manifest HEAD that misses is asked as a GET (test_cache_head); a blob HEAD as itself
    assert backend_saw(world, "GET", path) == (3 if kind == "manifests" else 2)
    counters = world.client.app[LIVE].runtime.cache.store.counters
    assert counters.evicted["delete"] == 1 and counters.entries == 0


async def test_a_delete_the_registry_refuses_evicts_nothing(make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    backend.blobs[("team/app", sha(CONFIG))] = CONFIG
    path = f"/v2/team/app/blobs/{sha(CONFIG)}"
    assert (await world.client.get(path)).status == 200
    assert (await world.client.delete(f"/v2/team/app/blobs/{sha(b'other')}", headers=MARK)).status == 404
    assert world.client.app[LIVE].runtime.cache.store.counters.entries == 1


async def test_bodies_over_max_item_and_a_cache_turned_off_always_ask_the_registry(make_world: MakeWorld) -> None:
    for cache in ({"max_item": len(CONFIG) - 1}, {"max_bytes": 0}, "off"):
        world, backend = await world_with(make_world, cache=cache)
        backend.blobs[("team/app", sha(CONFIG))] = CONFIG
        path = f"/v2/team/app/blobs/{sha(CONFIG)}"
        for _ in range(2):
            resp = await world.client.get(path)
            assert resp.status == 200 and await resp.read() == CONFIG
        assert backend_saw(world, "GET", path) == 2, cache


async def test_a_storm_of_requests_for_one_digest_makes_one_backend_request(make_world: MakeWorld) -> None:
    """The others wait for the first one's fill, then get the same bytes from memory."""
    world, backend = await world_with(make_world)
    backend.delay = 0.2  # the first answer is still on its way when the others arrive
    blob = bytes(range(256)) * 512
    backend.blobs[("team/app", sha(blob))] = blob
    path = f"/v2/team/app/blobs/{sha(blob)}"

    async def pull(method: str) -> tuple[int, bytes, str | None]:
        resp = await world.client.request(method, path)
        return resp.status, await resp.read(), resp.headers.get("Content-Length")

    answers = await asyncio.gather(*(pull("GET") for _ in range(20)), *(pull("HEAD") for _ in range(5)))
    assert answers[:20] == [(200, blob, str(len(blob)))] * 20
    assert answers[20:] == [(200, b"", str(len(blob)))] * 5
    assert backend_saw(world, "GET", path) == 1 and backend_saw(world, "HEAD", path) == 0
    counters = world.client.app[LIVE].runtime.cache.store.counters
    assert (counters.hits, counters.misses, counters.stored) == (24, 1, 1)


async def test_requests_waiting_for_a_fill_that_fails_ask_the_registry_themselves(make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    backend.delay = 0.1
    path = f"/v2/team/app/blobs/{sha(b'never pushed')}"
    statuses = await asyncio.gather(*(world.client.get(path) for _ in range(5)))
    assert [r.status for r in statuses] == [404] * 5
    assert backend_saw(world, "GET", path) == 5
