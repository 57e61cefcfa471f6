"""Workload 8: a pull storm of one image, N clients at once, as a fleet of nodes starting the same job does.

Each client is its own connection (its own TLS handshake, kept alive for its
requests, as containerd does); the clients are spread over one load process
per core (:class:`_LoadProcesses` says why). Each pulls the whole image the way a runtime
does once it knows the digest: the manifest by digest, then the config and
every layer by digest, every digest checked. The image is busybox-sized
(:data:`LAYER_MIB`), so every part of it fits ``cache.max_item``: this is
the row where the proxy's digest cache answers almost everything, after the
first client's misses.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import multiprocessing
import os
import ssl
import time
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path

import aiohttp

from bench import clients
from bench.fixtures import REPO, make_blob, make_small
from bench.procstat import CpuMeter, RssSampler
from bench.targets import Target
from bench.workloads import MANIFEST_TYPE, Context, Metrics, Partial

__all__ = ["LAYER_MIB", "image_storm", "seed_image"]

LAYER_MIB = 2  # one layer, about busybox's; under the proxy's default cache.max_item (4 MiB)
TAG = "storm"
_CHUNK = 256 * 1024


@dataclass(frozen=True)
class ImageStorm:
    completed: int  # clients that got the whole image with every digest right
    failed: int
    bytes: int
    requests: int
    wall_s: float  # from the first client's start to the last one's end, over all load processes
    first_error: str | None
    started: float
    ended: float


def seed_image(ctx: Context) -> str:
    """Push the storm's image straight to the registry once per run; its manifest digest."""
    folder = ctx.ws.root / "image"
    manifest_path = folder / "manifest.json"
    if not manifest_path.exists():
        folder.mkdir(exist_ok=True)
        layer = make_blob(folder / "layer.bin", LAYER_MIB)
        config = make_small(folder / "config.json", json.dumps({
            "architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": [layer.digest]},
        }).encode())
        for blob in (config, layer):
            clients.push_blob(ctx.direct.url, REPO, blob, ctx.ws.ca_cert, None)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "size": config.size,
                       "digest": config.digest},
            "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "size": layer.size,
                        "digest": layer.digest}],
        }
        tmp = folder / "manifest.tmp"
        tmp.write_text(json.dumps(manifest))
        clients.put_manifest(ctx.direct.url, REPO, TAG, tmp, MANIFEST_TYPE, ctx.ws.ca_cert, None)
        tmp.rename(manifest_path)
    return "sha256:" + hashlib.sha256(manifest_path.read_bytes()).hexdigest()


def _sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


async def _blob(session: aiohttp.ClientSession, base: str, digest: str) -> int:
    hasher = hashlib.sha256()
    size = 0
    async with session.get(f"{base}/v2/{REPO}/blobs/{digest}") as resp:
        if resp.status != 200:
            raise RuntimeError(f"blob HTTP {resp.status}")
        async for chunk in resp.content.iter_chunked(_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    if "sha256:" + hasher.hexdigest() != digest:
        raise RuntimeError("blob digest mismatch")
    return size


async def _client(base: str, digest: str, ctx: ssl.SSLContext | None, timeout: float) -> tuple[int, int]:
    """One node pulling the image: its bytes and requests; raises on any wrong status or digest."""
    connector = aiohttp.TCPConnector(limit=1, ssl=ctx if ctx else False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout)) as session:
        async with session.get(f"{base}/v2/{REPO}/manifests/{digest}", headers={"Accept": MANIFEST_TYPE}) as resp:
            if resp.status != 200:
                raise RuntimeError(f"manifest HTTP {resp.status}")
            body = await resp.read()
        if _sha256(body) != digest:
            raise RuntimeError("manifest digest mismatch")
        manifest = json.loads(body)
        total, requests = len(body), 1
        for desc in (manifest["config"], *manifest["layers"]):
            total += await _blob(session, base, desc["digest"])
            requests += 1
    return total, requests


async def _storm(base: str, digest: str, n: int, ca: Path, timeout: float) -> ImageStorm:
    ctx = ssl.create_default_context(cafile=str(ca)) if base.startswith("https:") else None
    start = time.time()  # wall clock: comparable across the load processes
    results = await asyncio.gather(*(_client(base, digest, ctx, timeout) for _ in range(n)), return_exceptions=True)
    end = time.time()
    done = [r for r in results if not isinstance(r, BaseException)]
    errors = [r for r in results if isinstance(r, BaseException)]
    first = f"{type(errors[0]).__name__}: {errors[0]}" if errors else None
    return ImageStorm(len(done), len(errors), sum(b for b, _ in done), sum(r for _, r in done), end - start, first,
                      start, end)


def _load_process(base: str, digest: str, n: int, ca: Path, timeout: float, ready: Queue, go: Event,
                  out: Queue) -> None:
    """One load process: imports done, it says so, waits for the start signal, runs its share of the clients."""
    ready.put(True)
    go.wait()
    try:
        out.put(asyncio.run(_storm(base, digest, n, ca, timeout)))
    except BaseException as exc:  # reported, never a hung parent
        out.put(ImageStorm(0, n, 0, 0, 0.0, f"{type(exc).__name__}: {exc}", 0.0, 0.0))


def _spread(n: int, parts: int) -> list[int]:
    return [n // parts + (1 if i < n % parts else 0) for i in range(parts)]


class _LoadProcesses:
    """The clients, spread over one process per core, started together once every process is up.

    One Python process cannot do the TLS of 200 clients as fast as a server
    serves them from memory: measured in a single process, the client's own
    CPU time equalled the wall time against ours and half of it against the
    plain-HTTP registry, so the row measured the load generator. Spread over
    the cores, it measures the servers (the machine's cores are shared by
    all, as in every row).
    """

    def __init__(self, base: str, digest: str, n: int, ca: Path, timeout: float) -> None:
        mp = multiprocessing.get_context("spawn")  # the bench process has threads (the RSS sampler): no fork
        self._go = mp.Event()
        self._out: Queue = mp.Queue()
        ready: Queue = mp.Queue()
        shares = [k for k in _spread(n, max(1, min(os.cpu_count() or 1, n))) if k]
        self._procs = [mp.Process(target=_load_process, args=(base, digest, k, ca, timeout, ready, self._go,
                                                               self._out), daemon=True) for k in shares]
        for proc in self._procs:
            proc.start()
        for _ in self._procs:
            ready.get(timeout=60)

    def run(self, timeout: float) -> ImageStorm:
        self._go.set()
        parts = [self._out.get(timeout=timeout + 60) for _ in self._procs]
        for proc in self._procs:
            proc.join(10)
        errors = [p.first_error for p in parts if p.first_error]
        starts = [p.started for p in parts if p.started]
        ends = [p.ended for p in parts if p.ended]
        wall = max(ends) - min(starts) if starts and ends else 0.0
        return ImageStorm(sum(p.completed for p in parts), sum(p.failed for p in parts), sum(p.bytes for p in parts),
                          sum(p.requests for p in parts), wall, errors[0] if errors else None,
                          min(starts, default=0.0), max(ends, default=0.0))


def image_storm(ctx: Context, target: Target) -> Metrics:
    """N clients pull the one image at once (n = the concurrent-pulls setting: 200, 50 in --quick)."""
    n = ctx.settings.concurrent_pulls
    digest = seed_image(ctx)
    load = _LoadProcesses(target.url, digest, n, Path(ctx.ws.ca_cert), timeout=600)
    meter = CpuMeter({"server": target.pid, "backend": ctx.direct.pid})
    with RssSampler(target.pid) as rss:
        storm = load.run(timeout=600)
    cpu = meter.stop().seconds
    metrics: Metrics = {
        "requested": float(n),
        "completed": float(storm.completed),
        "digests_ok": float(storm.completed),
        "wall_s": storm.wall_s,
        "mbps": storm.bytes / storm.wall_s / 1e6 if storm.wall_s else 0.0,
        "rps": storm.requests / storm.wall_s if storm.wall_s else 0.0,
        "cpu_s": cpu["server"],
        "backend_cpu_s": cpu["backend"],
        "peak_rss_mib": rss.peak_mib,
    }
    if storm.first_error:
        raise Partial(metrics, f"{storm.failed} of {n} clients failed, first error: {storm.first_error}")
    return metrics
