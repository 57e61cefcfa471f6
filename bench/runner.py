"""Interleaved execution: for each step, round by round, every target in turn (A B C D A B ...).

Interleaving spreads slow drifts of a shared 2-core box (other jobs, page cache, thermal)
over all targets instead of charging them to whichever target ran last.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from bench import imagestorm
from bench import workloads as w
from bench.clients import ClientError
from bench.procstat import settle
from bench.targets import Target


@dataclass
class Runs:
    """All runs of one (row, target) cell."""

    metrics: list[w.Metrics] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    na: str | None = None


Results = dict[tuple[str, str], Runs]
NOT_STARTED = "did not start (see 'Targets that did not start')"


@dataclass(frozen=True)
class Step:
    row: str
    title: str
    run: Callable[[w.Context, Target], w.Metrics]
    only: tuple[str, ...] = ()
    single_round: bool = False


def plan() -> list[Step]:
    return [
        Step("idle", "idle RSS", w.idle_rss, single_round=True),
        Step("pull", "1 pull big blob", w.pull),
        Step("push", "2 push big blob", w.push),
        Step("head", "3 HEAD manifest (hey)", w.head_manifest),
        Step("get_manifest", "3 GET manifest (wrk)", w.get_manifest),
        Step("get_base", "3 GET /v2/ (wrk)", w.get_base),
        Step("head_digest", "3 HEAD manifest by digest (hey)", w.head_manifest_digest),
        Step("get_digest", "3 GET manifest by digest (wrk)", w.get_manifest_digest),
        Step("basic:mark", "4 Basic writes, mark (cost 5)", partial(w.basic_writes, name="mark")),
        Step("basic:mark12", "4 Basic writes, mark12 (cost 12)", partial(w.basic_writes, name="mark12")),
        Step("bearer", "5 Bearer writes (ours only)", w.bearer_writes, only=("proxy",)),
        Step("huge_push", "6 push 2 GiB (ours)", w.huge_push, only=("proxy",), single_round=True),
        Step("huge_pull", "6 pull 2 GiB (ours)", w.huge_pull, only=("proxy",), single_round=True),
        Step("storm", "7 concurrent pulls", w.concurrent_pulls),
        Step("image_storm", "8 pull storm of one image", imagestorm.image_storm),
    ]


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _summary(metrics: w.Metrics) -> str:
    keys = (
        "mbps",
        "rps",
        "p99_ms",
        "cpu_s_per_gb",
        "cpu_ms_per_req",
        "peak_rss_mib",
        "idle_rss_mib",
        "digests_ok",
        "wall_s",
    )
    return ", ".join(f"{k}={metrics[k]:.4g}" for k in keys if k in metrics)


def execute(ctx: w.Context, targets: list[Target], rounds: int) -> Results:
    results: Results = {}
    for step in plan():
        chosen = [t for t in targets if not step.only or t.name in step.only]
        n_rounds = 1 if step.single_round else rounds
        for rnd in range(n_rounds):
            for target in chosen:
                cell = results.setdefault((step.row, target.name), Runs())
                if cell.na is not None:
                    continue
                _run_one(ctx, step, target, cell, f"{rnd + 1}/{n_rounds}")
    return results


def _run_one(ctx: w.Context, step: Step, target: Target, cell: Runs, label: str) -> None:
    settle([target.pid, target.basic_pid, ctx.direct.pid])
    started = time.monotonic()
    prefix = f"[{step.title}] round {label} {target.name}"
    try:
        metrics = step.run(ctx, target)
    except w.NotAvailable as exc:
        cell.na = str(exc)
        _log(f"{prefix}: n/a ({exc})")
        return
    except w.Partial as exc:
        cell.metrics.append(exc.metrics)
        cell.errors.append(str(exc))
        _log(f"{prefix}: PARTIAL {exc}")
        return
    except Exception as exc:
        cell.errors.append(f"{type(exc).__name__}: {exc}")
        _log(f"{prefix}: ERROR {exc}")
        if not isinstance(exc, ClientError):
            traceback.print_exc(file=sys.stderr)
        return
    cell.metrics.append(metrics)
    _log(f"{prefix}: {_summary(metrics)} ({time.monotonic() - started:.1f} s)")
