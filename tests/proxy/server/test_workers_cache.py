"""A ``DELETE`` accepted through one worker evicts that digest in every worker's digest cache.

In-process: two real :class:`WorkerLink` s, each with a real
:class:`ResponseCache`, joined to a real :class:`Supervisor` by socketpairs
exactly as ``_spawn`` joins them (only the worker processes are left out).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from auth.digestcache import CacheCounters, Key
from proxy.config.model import CacheConfig
from proxy.http.cache import ResponseCache
from proxy.http.keys import LIVE
from proxy.http.runtime import Live
from proxy.server.workers.channel import LINE_LIMIT, WorkerSpec, encode
from proxy.server.workers.evict import MAX_BACKLOG, eviction, parse_eviction, relay_eviction
from proxy.server.workers.process import WorkerProcess
from proxy.server.workers.supervisor import Supervisor
from proxy.server.workers.worker import WorkerLink
from tests.proxy.server.test_workers_supervisor import _write

BODY = b'{"schemaVersion":2}'
DIGEST = "sha256:" + hashlib.sha256(BODY).hexdigest()
OTHER = "sha256:" + hashlib.sha256(b"other").hexdigest()
OCI = "application/vnd.oci.image.manifest.v1+json"
HEADERS = (("Content-Type", OCI),)


def new_cache() -> ResponseCache:
    return ResponseCache(CacheConfig(), CacheCounters(), send_timeout=30)


def fill(cache: ResponseCache, *keys: Key) -> None:
    for key in keys:
        assert cache.store.put(key, HEADERS, BODY, cache.store.generation)


def held(cache: ResponseCache, key: Key) -> bool:
    return cache.store.get(key, [OCI], count=False) is not None


def public_app(cache: ResponseCache) -> web.Application:
    app = web.Application()
    app[LIVE] = Live(SimpleNamespace(gate=SimpleNamespace(throttle=None), cache=cache))  # type: ignore[arg-type]
    return app


async def delete(cache: ResponseCache, key: Key, status: int) -> None:
    """A ``DELETE`` through this worker, the registry answering ``status``."""
    async def forward(tee: object, method: str | None) -> web.StreamResponse:
        return web.Response(status=status)

    request = make_mocked_request("DELETE", f"/v2/{key[0]}/manifests/{key[2]}")
    assert (await cache.serve(request, key, "127.0.0.1", forward)).status == status


async def until(check: Any, what: str, timeout: float = 10) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


@dataclass
class Instance:
    supervisor: Supervisor
    links: list[WorkerLink]
    caches: list[ResponseCache]
    apps: list[web.Application]


@pytest.fixture
async def instance(tmp_path: Path) -> AsyncIterator[Instance]:
    """A supervisor and two workers on their channels, each worker attached to its own cache."""
    supervisor = Supervisor(_write(tmp_path))
    links, caches, apps, procs = [], [], [], []
    for worker in supervisor.workers:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=LINE_LIMIT)
        proc = SimpleNamespace(returncode=None, pid=0)  # alive, as far as the slot can tell
        procs.append(proc)
        worker.begin(proc, writer,  # type: ignore[arg-type]
                     asyncio.get_running_loop().create_task(supervisor._listen(worker, reader)))
        link = WorkerLink(WorkerSpec(worker.index, supervisor.config, (), theirs.detach(), "unused"))
        await link.connect()
        cache = new_cache()
        app = public_app(cache)
        link.attach(app)
        links.append(link)
        caches.append(cache)
        apps.append(app)
    yield Instance(supervisor, links, caches, apps)
    for link in links:
        await link.close()
    # the workers' ends closed: each supervisor-side listener sees end of file and ends
    await asyncio.gather(*(w._listening for w in supervisor.workers if w._listening is not None))
    for proc in procs:
        proc.returncode = 0
    supervisor.close()


async def test_a_delete_accepted_through_one_worker_evicts_in_the_other(instance: Instance) -> None:
    a, b = instance.caches
    key, kept = ("team/app", "manifest", DIGEST), ("team/app", "manifest", OTHER)
    fill(a, key)
    fill(b, key, kept)
    await delete(a, key, 202)
    assert len(a.store) == 0  # here at once, as with one process
    await until(lambda: not held(b, key), "evicted in worker 1")
    assert b.store.counters.evicted["delete"] == 1
    assert held(b, kept)  # only that digest: the rest of the cache stays


async def test_a_delete_the_registry_refuses_evicts_nowhere(instance: Instance) -> None:
    a, b = instance.caches
    refused, accepted = ("team/app", "manifest", DIGEST), ("team/app", "blob", OTHER)
    fill(b, refused, accepted)
    await delete(a, refused, 404)
    await delete(a, accepted, 202)  # the channel keeps order: once this one arrived, the 404 would have too
    await until(lambda: not held(b, accepted), "the 202 evicted in worker 1")
    assert held(b, refused)


async def test_the_cache_in_force_after_a_reload_is_the_one_evicted(instance: Instance) -> None:
    fresh = new_cache()
    instance.apps[1][LIVE] = Live(SimpleNamespace(gate=SimpleNamespace(throttle=None), cache=fresh))  # type: ignore[arg-type]
    instance.links[1].attach(instance.apps[1])  # what serve() does after every reload
    key = ("team/app", "manifest", DIGEST)
    fill(fresh, key)
    await delete(instance.caches[0], key, 202)
    await until(lambda: len(fresh.store) == 0, "evicted in worker 1's new cache")


async def test_a_malformed_eviction_is_refused_and_relayed_to_nobody(instance: Instance,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    key = ("team/app", "manifest", DIGEST)
    b = instance.caches[1]
    fill(b, key)
    send = instance.links[0]._send
    with caplog.at_level(logging.ERROR):
        assert send({"op": "evict", "repository": "team/app", "kind": "manifest", "digest": "latest"})
        assert send({"op": "evict", "repository": "team/app", "kind": "tags", "digest": DIGEST})
        await until(lambda: caplog.text.count("bad eviction") == 2, "both refused")
    assert held(b, key)


def test_an_eviction_names_a_digest_in_a_repository_and_nothing_else() -> None:
    key = ("team/app", "blob", DIGEST)
    assert parse_eviction(eviction(key)) == key
    for bad in ({"repository": "", "kind": "blob", "digest": DIGEST},
                {"repository": 7, "kind": "blob", "digest": DIGEST},
                {"repository": "r" * 5000, "kind": "blob", "digest": DIGEST},
                {"repository": "team/app", "kind": "tags", "digest": DIGEST},
                {"repository": "team/app", "kind": "blob", "digest": "v1"},
                {"repository": "team/app", "kind": "blob", "digest": "sha256:" + "A" * 64}):
        with pytest.raises(ValueError):
            parse_eviction({"op": "evict", **bad})


@dataclass
class FakeSlot:
    index: int
    alive: bool = True
    open: bool = True
    queued: int = 0
    sent: list[dict[str, Any]] | None = None

    def backlog(self) -> int:
        return self.queued

    def send(self, message: dict[str, Any]) -> bool:
        if self.open:
            self.sent = [*(self.sent or []), message]
        return self.open


def test_the_relay_skips_the_origin_the_dead_and_a_worker_that_reads_nothing(
        caplog: pytest.LogCaptureFixture) -> None:
    origin, peer, dead, hung, closed = (FakeSlot(0), FakeSlot(1), FakeSlot(2, alive=False),
                                        FakeSlot(3, queued=MAX_BACKLOG + 1), FakeSlot(4, open=False))
    message = eviction(("team/app", "manifest", DIGEST))
    slots: list[WorkerProcess] = [origin, peer, dead, hung, closed]  # type: ignore[list-item]
    with caplog.at_level(logging.WARNING):
        assert relay_eviction(origin, slots, message) == 1  # type: ignore[arg-type]
    assert peer.sent == [message]
    assert origin.sent is dead.sent is hung.sent is None
    assert "worker 3 reads nothing" in caplog.text and "worker 4: its channel is closed" in caplog.text


def test_a_line_is_well_within_the_channel_limit() -> None:
    longest = eviction(("r" * 4096, "manifest", "sha512:" + "a" * 128))
    assert len(encode(longest)) < LINE_LIMIT
