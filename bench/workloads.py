"""The measured workloads. Each function runs one measurement on one target.

Each returns a flat dict of metrics; the runner interleaves targets round by round and
the report takes medians. Server CPU always comes from /proc for the target's whole
process tree, the backend registry's separately.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path

from bench import clients, pullstorm
from bench.clients import ClientError, basic_header
from bench.fixtures import REPO, Blob, Workspace, make_small, user
from bench.loadgen import LoadResult, run_hey, run_wrk
from bench.procstat import CpuMeter, RssSampler, tree_rss_mib
from bench.settings import Settings
from bench.targets import Target

Metrics = dict[str, float]
MANIFEST_TYPE = "application/vnd.docker.distribution.manifest.v2+json"
TAG = "v1"


class NotAvailable(RuntimeError):
    """The target lacks a feature the workload needs (printed as n/a, not as an error)."""


class Partial(RuntimeError):
    """A run that produced numbers but also failures (e.g. 3 of 200 pulls failed)."""

    def __init__(self, metrics: Metrics, message: str) -> None:
        super().__init__(message)
        self.metrics = metrics


@dataclass(frozen=True)
class Context:
    settings: Settings
    ws: Workspace
    direct: Target
    big: Blob
    small: Blob
    huge: Blob | None


def seed_registry(ctx_ws: Workspace, direct: Target, blobs: list[Blob]) -> None:
    """Push the blobs and a small manifest straight to the registry (plain HTTP, no auth)."""
    for blob in blobs:
        clients.push_blob(direct.url, REPO, blob, ctx_ws.ca_cert, None)
    config = make_small(ctx_ws.root / "config.json", b'{"architecture":"amd64","os":"linux"}')
    clients.push_blob(direct.url, REPO, config, ctx_ws.ca_cert, None)
    layer = blobs[-1]
    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": config.size,
            "digest": config.digest,
        },
        "layers": [
            {
                "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                "size": layer.size,
                "digest": layer.digest,
            }
        ],
    }
    path = ctx_ws.root / "manifest.json"
    path.write_text(json.dumps(manifest))
    clients.put_manifest(direct.url, REPO, TAG, path, MANIFEST_TYPE, ctx_ws.ca_cert, None)


def _roots(ctx: Context, target: Target, pid: int | None = None) -> dict[str, int]:
    return {"server": pid or target.pid, "backend": ctx.direct.pid}


def _transfer_metrics(size: int, seconds: float, cpu: dict[str, float], rss: float) -> Metrics:
    gb = size / 1e9
    return {
        "mbps": size / seconds / 1e6,
        "cpu_s_per_gb": cpu["server"] / gb,
        "backend_cpu_s_per_gb": cpu["backend"] / gb,
        "peak_rss_mib": rss,
    }


def pull(ctx: Context, target: Target, blob: Blob | None = None) -> Metrics:
    """Workload 1 (and 6): one big blob, curl -o /dev/null."""
    blob = blob or ctx.big
    meter = CpuMeter(_roots(ctx, target))
    with RssSampler(target.pid) as rss:
        result = clients.pull_blob(target.url, REPO, blob, ctx.ws.ca_cert)
    return _transfer_metrics(blob.size, result.seconds, meter.stop().seconds, rss.peak_mib)


def push(ctx: Context, target: Target, blob: Blob | None = None) -> Metrics:
    """Workload 2 (and 6): POST + chunked PATCH + PUT as mark (Basic, pre-emptive)."""
    blob = blob or ctx.big
    mark = user("mark")
    meter = CpuMeter(_roots(ctx, target))
    with RssSampler(target.pid) as rss:
        result = clients.push_blob(target.url, REPO, blob, ctx.ws.ca_cert, basic_header(mark.name, mark.password))
    return _transfer_metrics(blob.size, result.seconds, meter.stop().seconds, rss.peak_mib)


def _load_metrics(result: LoadResult, cpu: dict[str, float]) -> Metrics:
    n = max(result.requests, 1)
    metrics: Metrics = {
        "rps": result.rps,
        "cpu_ms_per_req": cpu["server"] * 1000 / n,
        "backend_cpu_ms_per_req": cpu["backend"] * 1000 / n,
        "errors": float(result.errors),
        "requests": float(result.requests),
    }
    if result.p50_ms is not None:
        metrics["p50_ms"] = result.p50_ms
    if result.p99_ms is not None:
        metrics["p99_ms"] = result.p99_ms
    for code, count in result.statuses.items():
        metrics[f"status_{code}"] = float(count)
    return metrics


def _manifest_url(target: Target) -> str:
    return f"{target.url}/v2/{REPO}/manifests/{TAG}"


def head_manifest(ctx: Context, target: Target) -> Metrics:
    """Workload 3: HEAD manifest with hey (wrk cannot do HEAD)."""
    s = ctx.settings
    meter = CpuMeter(_roots(ctx, target))
    result = run_hey(_manifest_url(target), "HEAD", s.load_seconds, s.connections, (f"Accept: {MANIFEST_TYPE}",))
    return _load_metrics(result, meter.stop().seconds)


def _wrk_with_probe(ctx: Context, target: Target, url: str, headers: tuple[str, ...]) -> Metrics:
    """wrk reports only "non-2xx/3xx"; one curl beforehand records which status it is."""
    s = ctx.settings
    probe = clients.status_of(url, ctx.ws.ca_cert, headers)
    meter = CpuMeter(_roots(ctx, target))
    result = run_wrk(url, s.load_seconds, s.connections, headers)
    metrics = _load_metrics(result, meter.stop().seconds)
    metrics["probe_status"] = float(probe)
    return metrics


def get_manifest(ctx: Context, target: Target) -> Metrics:
    return _wrk_with_probe(ctx, target, _manifest_url(target), (f"Accept: {MANIFEST_TYPE}",))


def get_base(ctx: Context, target: Target) -> Metrics:
    return _wrk_with_probe(ctx, target, f"{target.url}/v2/", ())


def _delete_url(base: str) -> str:
    """An upload that does not exist: the registry answers 404 cheaply after auth."""
    return f"{base}/v2/{REPO}/blobs/uploads/{uuid.uuid4()}"


def basic_writes(ctx: Context, target: Target, name: str) -> Metrics:
    """Workload 4: DELETE with Basic on every request (proxy: its basic-challenge instance)."""
    s = ctx.settings
    u = user(name)
    meter = CpuMeter(_roots(ctx, target, target.basic_pid))
    result = run_hey(
        _delete_url(target.basic_url),
        "DELETE",
        s.load_seconds,
        s.connections,
        (f"Authorization: {basic_header(u.name, u.password)}",),
    )
    return _load_metrics(result, meter.stop().seconds)


def bearer_writes(ctx: Context, target: Target) -> Metrics:
    """Workload 5 (ours only): the same DELETEs with a token fetched once as mark12."""
    s = ctx.settings
    u = user("mark12")
    try:
        token = clients.fetch_token(target.url, ctx.ws.ca_cert, u.name, u.password, REPO)
    except ClientError as exc:
        raise NotAvailable(f"token endpoint not available ({exc})") from None
    if token is None:
        raise NotAvailable("token endpoint not available")
    meter = CpuMeter(_roots(ctx, target))
    result = run_hey(
        _delete_url(target.url), "DELETE", s.load_seconds, s.connections, (f"Authorization: Bearer {token}",)
    )
    return _load_metrics(result, meter.stop().seconds)


def idle_rss(ctx: Context, target: Target) -> Metrics:
    return {"idle_rss_mib": tree_rss_mib(target.pid)}


def huge_push(ctx: Context, target: Target) -> Metrics:
    """Workload 6 extra: 2 GiB push through ours (runs before the 2 GiB pull)."""
    if ctx.huge is None:
        raise NotAvailable("skipped in --quick")
    return push(ctx, target, ctx.huge)


def huge_pull(ctx: Context, target: Target) -> Metrics:
    if ctx.huge is None:
        raise NotAvailable("skipped in --quick")
    if not _blob_exists(ctx, ctx.huge):
        clients.push_blob(ctx.direct.url, REPO, ctx.huge, ctx.ws.ca_cert, None)
    return pull(ctx, target, ctx.huge)


def _blob_exists(ctx: Context, blob: Blob) -> bool:
    url = f"{ctx.direct.url}/v2/{REPO}/blobs/{blob.digest}"
    try:
        return clients.head_status(url, ctx.ws.ca_cert) == "200"
    except ClientError:
        return False


def concurrent_pulls(ctx: Context, target: Target) -> Metrics:
    """Workload 7: N anonymous pulls of the 16 MiB blob at once, every digest checked."""
    n = ctx.settings.concurrent_pulls
    url = f"{target.url}/v2/{REPO}/blobs/{ctx.small.digest}"
    meter = CpuMeter(_roots(ctx, target))
    with RssSampler(target.pid) as rss:
        storm = pullstorm.run(url, n, ctx.small.digest, Path(ctx.ws.ca_cert))
    cpu = meter.stop().seconds
    metrics: Metrics = {
        "requested": float(n),
        "completed": float(storm.completed),
        "digests_ok": float(storm.digests_ok),
        "wall_s": storm.wall_s,
        "mbps": storm.bytes / storm.wall_s / 1e6 if storm.wall_s else 0.0,
        "cpu_s": cpu["server"],
        "backend_cpu_s": cpu["backend"],
        "peak_rss_mib": rss.peak_mib,
    }
    if storm.first_error:
        raise Partial(metrics, f"{n - storm.completed} failed, first error: {storm.first_error}")
    return metrics


def _digest_url(ctx: Context, target: Target) -> str:
    """The same manifest as workload 3's tag rows, by its digest: content a proxy may answer from memory."""
    digest = "sha256:" + hashlib.sha256((ctx.ws.root / "manifest.json").read_bytes()).hexdigest()
    return f"{target.url}/v2/{REPO}/manifests/{digest}"


def head_manifest_digest(ctx: Context, target: Target) -> Metrics:
    """Workload 3 by digest, HEAD (hey); one GET first, as for every target (a GET fills our cache; a HEAD miss too)."""
    s = ctx.settings
    url = _digest_url(ctx, target)
    headers = (f"Accept: {MANIFEST_TYPE}",)
    probe = clients.status_of(url, ctx.ws.ca_cert, headers)
    meter = CpuMeter(_roots(ctx, target))
    result = run_hey(url, "HEAD", s.load_seconds, s.connections, headers)
    metrics = _load_metrics(result, meter.stop().seconds)
    metrics["probe_status"] = float(probe)
    return metrics


def get_manifest_digest(ctx: Context, target: Target) -> Metrics:
    """Workload 3 by digest, GET (wrk)."""
    return _wrk_with_probe(ctx, target, _digest_url(ctx, target), (f"Accept: {MANIFEST_TYPE}",))
