"""The supervisor's admin listener asks every serving worker's private one and combines the answers.

The workers here are small aiohttp apps on unix sockets answering like the
real admin app (``proxy.observability.admin``); the supervisor's app is the
real one, on the test's loop.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from auth.throttle import LoginThrottle
from proxy.server.workers.aggregate import create_supervisor_admin, sum_json
from proxy.server.workers.merge import Merger


@dataclass
class FakeWorker:
    """A worker as the aggregate reads it, and what its private admin app answers."""

    index: int
    admin_socket: str
    requests: float = 0
    writes: int = 0
    ready_status: int = 200
    answers: bool = True
    ready: bool = True
    alive: bool = True
    pid: int = 0
    restarts: int = 0
    cache_entries: int = 0

    def app(self) -> web.Application:
        async def metrics(request: web.Request) -> web.Response:
            reg = CollectorRegistry()
            Counter("registry_auth_proxy_requests", "Requests", ["status"], registry=reg).labels("200").inc(
                self.requests)
            Gauge("registry_auth_proxy_inflight_writes", "Writes", registry=reg).set(self.writes)
            return web.Response(body=generate_latest(reg), content_type="text/plain")

        async def inflight(request: web.Request) -> web.Response:
            return web.json_response({"writes": self.writes, "requests": self.writes})

        async def readyz(request: web.Request) -> web.Response:
            status = "ready" if self.ready_status == 200 else "backend unreachable"
            return web.json_response({"status": status}, status=self.ready_status)

        async def cache(request: web.Request) -> web.Response:
            if request.method == "DELETE":
                cleared, self.cache_entries = self.cache_entries, 0
                return web.json_response({"cleared": cleared})
            return web.json_response({"enabled": True, "ttl": 300.0, "entries": self.cache_entries,
                                      "evicted": {"lru": 1}})

        @web.middleware
        async def silent(request: web.Request, handler: Any) -> web.StreamResponse:
            if not self.answers:
                raise web.HTTPInternalServerError()
            return await handler(request)

        app = web.Application(middlewares=[silent])
        app.router.add_get("/metrics", metrics)
        app.router.add_get("/inflight", inflight)
        app.router.add_get("/readyz", readyz)
        app.router.add_route("*", "/cache", cache)
        return app


@dataclass
class FakeSupervisor:
    workers: list[FakeWorker]
    throttle: LoginThrottle | None = None
    merger: Merger = field(default_factory=Merger)
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)


@pytest.fixture
async def world() -> AsyncIterator[tuple[FakeSupervisor, TestClient]]:
    folder = Path(tempfile.mkdtemp(prefix="rapt-"))  # short: unix socket paths are limited to 108 bytes
    workers = [FakeWorker(i, str(folder / f"w{i}.sock"), pid=100 + i) for i in range(2)]
    runners = []
    for worker in workers:
        runner = web.AppRunner(worker.app())
        await runner.setup()
        await web.UnixSite(runner, worker.admin_socket).start()
        runners.append(runner)
    supervisor = FakeSupervisor(workers, throttle=LoginThrottle(3, 300))
    client = TestClient(TestServer(create_supervisor_admin(supervisor)))  # type: ignore[arg-type]
    await client.start_server()
    yield supervisor, client
    await client.close()
    for runner in runners:
        await runner.cleanup()
    shutil.rmtree(folder, ignore_errors=True)


def samples(text: str) -> dict[str, float]:
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


async def test_inflight_sums_every_serving_worker_and_refuses_to_guess(world) -> None:  # type: ignore[no-untyped-def]
    supervisor, client = world
    supervisor.workers[0].writes, supervisor.workers[1].writes = 1, 2
    resp = await client.get("/inflight")
    assert resp.status == 200 and (await resp.json())["writes"] == 3
    supervisor.workers[1].answers = False  # alive but silent: a write may be in flight there
    resp = await client.get("/inflight")
    assert resp.status == 503 and "[1]" in (await resp.json())["error"]
    supervisor.workers[1].alive = False  # gone: its writes are gone with it
    resp = await client.get("/inflight")
    assert resp.status == 200 and (await resp.json())["writes"] == 1


async def test_metrics_are_summed_and_a_dead_worker_s_counters_stay(world) -> None:  # type: ignore[no-untyped-def]
    supervisor, client = world
    supervisor.workers[0].requests, supervisor.workers[1].requests = 3, 5
    supervisor.workers[0].writes, supervisor.workers[1].writes = 1, 1
    found = samples(await (await client.get("/metrics")).text())
    assert found["registry_auth_proxy_requests_total"] == 8 and found["registry_auth_proxy_inflight_writes"] == 2
    supervisor.merger.retire(1)  # what the supervisor does when worker 1 dies
    supervisor.workers[1].requests, supervisor.workers[1].writes = 0, 0  # its replacement
    found = samples(await (await client.get("/metrics")).text())
    assert found["registry_auth_proxy_requests_total"] == 8 and found["registry_auth_proxy_inflight_writes"] == 1


async def test_ready_when_one_worker_is(world) -> None:  # type: ignore[no-untyped-def]
    supervisor, client = world
    supervisor.workers[0].ready_status = 503
    resp = await client.get("/readyz")
    assert resp.status == 200 and (await resp.json())["status"] == "ready"
    supervisor.workers[1].ready_status = 503
    resp = await client.get("/readyz")
    assert resp.status == 503 and (await resp.json())["status"] == "backend unreachable"
    for worker in supervisor.workers:
        worker.ready = False
    resp = await client.get("/readyz")
    body = await resp.json()
    assert resp.status == 503 and body == {"status": "starting", "workers": {"serving": 0, "configured": 2}}
    resp = await client.get("/healthz")
    assert resp.status == 200 and (await resp.json())["status"] == "alive"


async def test_cache_is_cleared_in_every_worker_or_the_answer_says_not(world) -> None:  # type: ignore[no-untyped-def]
    supervisor, client = world
    supervisor.workers[0].cache_entries, supervisor.workers[1].cache_entries = 2, 3
    shown = await (await client.get("/cache")).json()
    assert shown["entries"] == 5 and shown["ttl"] == 300.0 and shown["evicted"] == {"lru": 2}
    resp = await client.delete("/cache")
    assert resp.status == 200 and (await resp.json())["cleared"] == 5
    supervisor.workers[0].answers = False
    resp = await client.delete("/cache")
    assert resp.status == 503  # gc says so: that worker may answer deleted content until cache.ttl


async def test_throttle_is_the_supervisor_s_and_workers_lists_each(world) -> None:  # type: ignore[no-untyped-def]
    supervisor, client = world
    slot = supervisor.throttle.reserve("10.0.0.1", "mark")
    supervisor.throttle.failed(slot)
    body = await (await client.get("/throttle?user=mark")).json()
    assert body["enabled"] and {e["kind"] for e in body["entries"]} == {"address+user", "user"}
    assert (await (await client.delete("/throttle?all=1")).json())["cleared"] == 3
    supervisor.workers[0].requests, supervisor.workers[1].requests = 4, 6
    supervisor.workers[1].restarts = 2
    listed = (await (await client.get("/workers")).json())["workers"]
    assert [(w["index"], w["pid"], w["requests"], w["restarts"]) for w in listed] == [(0, 100, 4, 0), (1, 101, 6, 2)]


def test_sum_json_adds_numbers_and_keeps_settings_and_words() -> None:
    assert sum_json([{"writes": 1, "ttl": 5.0, "enabled": True, "by": {"a": 1}},
                     {"writes": 2, "ttl": 5.0, "enabled": True, "by": {"a": 2, "b": 1}}]) == \
        {"writes": 3, "ttl": 5.0, "enabled": True, "by": {"a": 3, "b": 1}}
