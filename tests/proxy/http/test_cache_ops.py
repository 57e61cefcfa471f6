"""The digest cache seen from operations: ``gc`` clears it through the admin listener, metrics count it,
a reload keeps it unless its settings changed.

In-process: the real public app before the counting registry of
``test_cache``, its admin app beside it; ``gc``'s ``urllib`` calls run in a
thread while the loop serves them.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import generate_latest

from proxy.config import parse_config
from proxy.http.keys import LIVE, STATS
from proxy.http.runtime import build_runtime
from proxy.observability.admin import create_admin_app
from proxy.observability.metrics import Metrics
from proxy.ops import gc
from tests.proxy.http.conftest import World
from tests.proxy.http.test_cache import CONFIG, MANIFEST, OCI, ContentRegistry, backend_saw, sha, world_with

MakeWorld = Callable[..., Awaitable[World]]


async def admin_for(world: World, aiohttp_client: Callable[..., Awaitable[TestClient]]) -> tuple[TestClient, Metrics]:
    app: web.Application = world.client.app
    metrics = Metrics(app[STATS])
    return await aiohttp_client(create_admin_app(app, metrics)), metrics


async def fill(world: World, backend: ContentRegistry) -> list[str]:
    """One manifest and one config kept, each answered once from memory; their paths."""
    digest = backend.put("team/app", MANIFEST)
    backend.blobs[("team/app", sha(CONFIG))] = CONFIG
    paths = [f"/v2/team/app/manifests/{digest}", f"/v2/team/app/blobs/{sha(CONFIG)}"]
    for path in paths:
        for _ in range(2):
            assert (await world.client.get(path, headers={"Accept": OCI})).status == 200
        assert backend_saw(world, "GET", path) == 1
    return paths


async def test_gc_clears_every_cache_after_the_collector_ran(
        make_world: MakeWorld, aiohttp_client: Callable[..., Awaitable[TestClient]], tmp_path: Path,
        capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc, "INTERVAL", 0.01)  # the replicas' flag settle time is not what this is about
    world, backend = await world_with(make_world)
    paths = await fill(world, backend)
    admin, _ = await admin_for(world, aiohttp_client)
    url = f"http://127.0.0.1:{admin.server.port}"
    config = parse_config({}, tmp_path / "gc.yml")
    ran = tmp_path / "ran"
    code = await asyncio.to_thread(gc.run, config, f"touch {ran}", 10, [url])
    assert code == 0 and ran.exists()
    out = capfd.readouterr().out
    assert f"gc: {url}: digest cache cleared (2 entries)" in out
    assert out.index("gc: command exited 0") < out.index("digest cache cleared")
    for path in paths:
        assert (await world.client.get(path, headers={"Accept": OCI})).status == 200
        assert backend_saw(world, "GET", path) == 2  # asked again after gc
    assert world.client.app[STATS].cache.evicted["clear"] == 2


async def test_gc_names_a_proxy_whose_cache_it_could_not_clear(tmp_path: Path, capfd: pytest.CaptureFixture[str],
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc, "INTERVAL", 0.01)
    assert gc.clear_caches(["http://127.0.0.1:9"], 300) is False
    assert "http://127.0.0.1:9/cache does not answer" in capfd.readouterr().err
    assert gc.clear_caches([], 42) is False
    assert "expires within cache.ttl (42s)" in capfd.readouterr().err


async def test_the_admin_listener_shows_and_clears_the_cache_and_metrics_count_it(
        make_world: MakeWorld, aiohttp_client: Callable[..., Awaitable[TestClient]]) -> None:
    world, backend = await world_with(make_world, cache={"max_bytes": 1 << 20, "max_item": 1 << 16, "ttl": 60})
    await fill(world, backend)
    admin, metrics = await admin_for(world, aiohttp_client)
    shown = await (await admin.get("/cache")).json()
    assert {k: shown[k] for k in ("enabled", "max_bytes", "max_item", "ttl", "entries", "hits", "misses",
                                  "stored")} == {
        "enabled": True, "max_bytes": 1 << 20, "max_item": 1 << 16, "ttl": 60, "entries": 2, "hits": 2,
        "misses": 2, "stored": 2}
    assert 0 < shown["bytes"] <= 1 << 20
    text = generate_latest(metrics.registry).decode()
    assert "registry_auth_proxy_cache_hits_total 2.0" in text
    assert "registry_auth_proxy_cache_misses_total 2.0" in text
    assert "registry_auth_proxy_cache_entries 2.0" in text
    assert f"registry_auth_proxy_cache_bytes {float(shown['bytes'])}" in text
    cleared = await admin.delete("/cache")
    assert cleared.status == 200 and (await cleared.json()) == {"cleared": 2}
    text = generate_latest(metrics.registry).decode()
    assert 'registry_auth_proxy_cache_evictions_total{reason="clear"} 2.0' in text
    assert "registry_auth_proxy_cache_bytes 0.0" in text


async def test_a_reload_keeps_the_cache_unless_its_settings_changed(make_world: MakeWorld) -> None:
    world, backend = await world_with(make_world)
    await fill(world, backend)
    app = world.client.app
    old = app[LIVE].runtime
    session = old.upstream.session
    same = build_runtime(dataclasses.replace(old.config, access=parse_config({}, old.config.path).access), session,
                         app[STATS], previous=old)
    assert same.cache is old.cache and len(same.cache.store) == 2
    other = dataclasses.replace(old.config, cache=dataclasses.replace(old.config.cache, ttl=10))
    changed = build_runtime(other, session, app[STATS], previous=old)
    assert changed.cache is not old.cache and len(changed.cache.store) == 0 and changed.cache.store.ttl == 10
    assert app[STATS].cache.entries == 0  # the metrics follow the cache in force
