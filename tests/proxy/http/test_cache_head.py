"""A ``HEAD`` that misses the digest cache: a manifest's is sent as a ``GET`` and fills it; a blob's is not.

Why: a client that only checks a digest (``HEAD``), or a ``workers: 2``
replica whose memory another worker's ``GET`` filled, would otherwise ask
the registry every time. A manifest is at most a few MiB (distribution
refuses larger), so asking for its body costs little; a blob ``HEAD``
may be about gigabytes (pushes check every layer with one), so it is
forwarded as it came.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from proxy.http.keys import LIVE
from tests.proxy.http.conftest import World
from tests.proxy.http.test_cache import CONFIG, MANIFEST, OCI, backend_saw, comparable, sha, world_with

MakeWorld = Callable[..., Awaitable[World]]


async def test_a_manifest_head_that_misses_asks_for_a_get_and_fills_memory(make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    digest = backend.put("team/app", MANIFEST)
    path = f"/v2/team/app/manifests/{digest}"
    head = await world.client.head(path, headers={"Accept": OCI})
    assert head.status == 200 and await head.read() == b""
    assert head.headers["Content-Length"] == str(len(MANIFEST))
    assert head.headers["Docker-Content-Digest"] == digest
    assert backend_saw(world, "GET", path) == 1 and backend_saw(world, "HEAD", path) == 0
    again = await world.client.head(path, headers={"Accept": OCI})
    get = await world.client.get(path, headers={"Accept": OCI})
    assert get.status == 200 and await get.read() == MANIFEST
    assert comparable(again) == comparable(head) == comparable(get)
    assert backend_saw(world, "GET", path) == 1  # both answered from what the HEAD filled
    counters = world.client.app[LIVE].runtime.cache.store.counters
    assert (counters.stored, counters.hits) == (1, 2)


async def test_a_blob_head_that_misses_is_forwarded_as_a_head(make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    backend.blobs[("team/app", sha(CONFIG))] = CONFIG
    path = f"/v2/team/app/blobs/{sha(CONFIG)}"
    for _ in range(2):
        head = await world.client.head(path)
        assert head.status == 200 and head.headers["Content-Length"] == str(len(CONFIG))
    assert backend_saw(world, "HEAD", path) == 2 and backend_saw(world, "GET", path) == 0
    assert world.client.app[LIVE].runtime.cache.store.counters.stored == 0


async def test_a_manifest_head_for_a_digest_the_registry_lacks_is_its_404_without_a_body(
        make_world: MakeWorld) -> None:
    world, _backend = await world_with(make_world)
    path = f"/v2/team/app/manifests/{sha(b'nothing')}"
    for _ in range(2):
        head = await world.client.head(path, headers={"Accept": OCI})
        assert head.status == 404 and await head.read() == b""
    assert backend_saw(world, "GET", path) == 2  # a miss is never remembered
    assert world.client.app[LIVE].runtime.cache.store.counters.stored == 0
    # the 404's body was read, not sent: the backend connection went back to the pool, and is reused right
    assert world.client.app[LIVE].runtime.upstream.wire.idle_connections == 1
    get = await world.client.get(path, headers={"Accept": OCI})
    assert get.status == 404 and (await get.json())["errors"][0]["code"] == "MANIFEST_UNKNOWN"


async def test_a_manifest_head_from_a_caller_who_may_not_pull_reaches_nothing(make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    digest = backend.put("private/app", MANIFEST)
    path = f"/v2/private/app/manifests/{digest}"
    head = await world.client.head(path, headers={"Accept": OCI})
    assert head.status == 401
    assert backend.seen == []
