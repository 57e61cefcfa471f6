"""Assemble RESULTS.md: versions, method, one table per workload, the targets verdicts."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from bench import goals, imagestorm, report
from bench.prereq import Versions
from bench.runner import Results
from bench.settings import Settings


@dataclass(frozen=True)
class RunInfo:
    command: str
    settings: Settings
    versions: Versions
    tls: dict[str, str]
    start_errors: dict[str, str]
    openssl_mbps: float | None
    openssl_line: str
    wall_s: float


LEVERS = Path(__file__).with_name("LEVERS.md")


def _method(info: RunInfo) -> str:
    s = info.settings
    big = f"{s.big_blob_mib} MiB"
    return "\n".join(
        [
            f"- Mode: {'--quick' if s.quick else 'full'}; {s.rounds} interleaved round(s) "
            f"(targets in turn A B C D, A B C D, …); medians with min–max over rounds.",
            f"- Blob for workloads 1/2/6: {big}; load runs: {s.load_seconds} s, "
            f"{s.connections} connections; concurrent pulls: {s.concurrent_pulls} × "
            f"{s.small_blob_mib} MiB.",
            "- Everything on 127.0.0.1. direct = `docker-registry serve` over plain HTTP "
            "(filesystem storage in a temp dir, delete enabled); proxy/apache/nginx are TLS "
            "fronts to that same registry process.",
            "- proxy runs as two instances: `challenge: bearer` (default; workloads 1–3, 5–7) and "
            "`challenge: basic` (workload 4). proxy-w2 is the same with `workers: 2` (a supervisor and two "
            "worker processes on one port; its CPU and RSS are the whole tree's): CPU per request should "
            "match proxy's; on 2 cores shared with the registry and the load generator, req/s cannot double.",
            "- Server CPU = utime+stime(+cutime+cstime) from /proc over the server's process tree "
            "(Apache parent + children, nginx master + workers, proxy + any workers); backend CPU = "
            "the registry's tree in the same window. RSS = summed VmRSS of the tree, sampled every "
            "50 ms.",
            "- TLS: throwaway trustme CA + RSA-2048 server cert for localhost/127.0.0.1. curl and the "
            "aiohttp client verify against that CA. **hey and wrk do not verify**: hey 0.1.4 has no "
            "CA option and hard-codes InsecureSkipVerify; wrk 4.1 never verifies. They still do full "
            "TLS, so the server-side cost is identical.",
            "- wrk 4.1 cannot do HEAD (it waits for a body), so HEAD uses `hey -m HEAD`; GETs use "
            "`wrk -t2 --latency`. req/s counts answered requests only. When a hey run has fewer "
            "than ~100 answers (bcrypt cost 12), hey prints no 99th percentile and p99 is the "
            "slowest request.",
            "- Workload 2 pushes the same blob (same digest) every round; the registry receives "
            "and hashes all bytes every time. The 2 GiB rows run once (ours only).",
            "- Load generator, servers and registry share the machine's cores: compare ratios and "
            "CPU columns within one run, not absolute numbers across machines.",
        ]
    )


def render(info: RunInfo, results: Results) -> str:
    s = info.settings
    targets = [t for t in s.targets]
    big = f"{s.big_blob_mib} MiB"
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        f"# registry-auth-proxy side-by-side bench{' (--quick)' if s.quick else ''}",
        f"Generated {now} by `{info.command}` in {info.wall_s:.0f} s. Machine: {info.versions.cores} cores.",
        "## Versions",
        "```\n" + "\n".join(f"{k}: {v}" for k, v in info.versions.lines) + "\n```",
        "TLS negotiated by a default client: " + "; ".join(f"{t}: {v}" for t, v in info.tls.items()),
        "## Method",
        _method(info),
    ]
    if info.start_errors:
        parts.append("## Targets that did not start")
        parts.append("\n\n".join(f"**{t}**:\n\n```\n{e.strip()}\n```" for t, e in info.start_errors.items()))
    speed = f"{info.openssl_mbps:,.0f} MB/s" if info.openssl_mbps else "unavailable"
    parts += [
        "## Physical limit",
        f"`openssl speed -evp aes-256-gcm -bytes 16384 -seconds 2` (one core): **{speed}** "
        f"for 16 KiB blocks (`{info.openssl_line}`). A TLS stream cannot beat this per core.",
        f"## 1. Pull of one {big} blob (curl -o /dev/null)",
        report.transfer_table(results, "pull", targets),
        f"## 2. Push of one {big} blob (POST + chunked PATCH + PUT ?digest=, Basic mark)",
        report.transfer_table(results, "push", targets),
        f"## 3. Small reads, {s.connections} connections, {s.load_seconds} s",
        report.load_table(
            results,
            [("head", "HEAD manifest (hey)"), ("get_manifest", "GET manifest (wrk)"), ("get_base", "GET /v2/ (wrk)"),
             ("head_digest", "HEAD manifest by digest (hey)"), ("get_digest", "GET manifest by digest (wrk)")],
            targets,
        ),
        "In bearer mode (the default) ours answers an anonymous `GET /v2/` itself with 401 + a Bearer "
        "challenge, by design (so clients learn where to log in): that row never reaches the registry "
        "and is not comparable with the others, which forward it and get 200.",
        f"## 4. Authenticated writes, Basic on every request "
        f"(DELETE of a non-existent upload → 404), {s.connections} connections, "
        f"{s.load_seconds} s",
        "direct ignores the Authorization header. nginx has no groups (any valid user may write).",
        report.load_table(results, [("basic:mark", "mark (cost 5)"), ("basic:mark12", "mark12 (cost 12)")], targets),
        "## 5. The same writes with a Bearer token (ours only)",
        "Token fetched once per round as mark12 from the proxy's token endpoint; "
        "'vs direct' compares with direct's cost-12 row of workload 4.",
        report.load_table(results, [("bearer", "mark12, Bearer token")], targets, baseline={"bearer": "basic:mark12"}),
        "## 6. Peak RSS (sum over the server's process tree, sampled every 50 ms)",
        report.rss_table(results, targets, big),
        "## 7. Concurrent anonymous pulls",
        report.storm_table(results, targets, s.concurrent_pulls, s.small_blob_mib),
        "## 8. A pull storm of one image",
        f"{s.concurrent_pulls} clients at once, each on its own connection, pull one image by digest: the "
        f"manifest, its config and its one {imagestorm.LAYER_MIB} MiB layer, every digest checked. Each "
        "part fits the proxy's `cache.max_item`, so after the first misses ours answers from memory; the "
        "by-digest rows of workload 3 are warmed by one GET before the load (a GET or a manifest HEAD fills it).",
        report.image_storm_table(results, targets, s.concurrent_pulls),
        "## Targets from the issue (our proxy)",
        goals.render(goals.evaluate(results, s.concurrent_pulls, s.quick)),
    ]
    if not s.quick and LEVERS.exists():
        parts.append(levers())
    return "\n\n".join(parts) + "\n"


def levers() -> str:
    """``bench/LEVERS.md``, the levers tried and their A/B figures, carried into every full run's file.

    They are measured with ``bench.head_ab``, ``bench.floors`` and friends
    (minutes each), not by this run: the heading says so.
    """
    text = LEVERS.read_text(encoding="utf-8").strip()
    title, _, body = text.partition("\n")
    body = "\n".join("#" + line if line.startswith("#") else line for line in body.splitlines())  # one level down
    return f"## {title.lstrip('# ')} (from `bench/LEVERS.md`, not measured by this run)\n{body}"
