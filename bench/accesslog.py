"""CPU per request of the access-log hook (issue 15): not a test, a measurement.

    .venv/bin/python -m bench.accesslog [N] [--against REV]

A mocked manifest HEAD (verified user, judged client, route) and a finished
``StreamResponse``, fed to the real hook (metrics, rendering, the sink)
inside a running loop, so batched lines are flushed as in ``serve``: one
request per loop turn (an idle proxy) and 32 (a busy one). The loop's own
turns are measured apart and subtracted. Times are ``time.thread_time``
per call, the best of several rounds, so other processes count little.

``--against REV`` (a git revision, e.g. ``HEAD``) loads that revision's
``accesslog.py`` and ``metrics.py`` too and alternates rounds between the two.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from auth.access import Action
from auth.routes import Route
from proxy.http.keys import CLIENT, ROUTE, USER
from proxy.http.runtime import Stats
from proxy.observability import accesslog, metrics

ROUNDS = 7
ROOT = Path(__file__).resolve().parents[1]  # the repository: where --against is looked up
Pair = tuple[ModuleType, ModuleType]  # (accesslog, metrics)


def _request() -> web.BaseRequest:
    request = make_mocked_request("HEAD", "/v2/team/app/manifests/latest",
                                  headers={"User-Agent": "docker/27.3.1 go/go1.22.7", "Host": "registry"})
    request[ROUTE] = Route("manifest", "team/app", Action.PULL)
    request[USER] = "mark"
    request[CLIENT] = "192.0.2.10"
    return request


def _load(rev: str, tmp: Path) -> Pair:
    """``rev``'s two modules, importable beside the working tree's (accesslog made to use its metrics)."""
    def load(name: str, source: str) -> ModuleType:
        path = tmp / f"{name}.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location(name, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module

    def show(path: str) -> str:
        return subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True,
                              text=True).stdout

    old_metrics = load("rev_metrics", show("proxy/observability/metrics.py"))
    old_log = load("rev_accesslog", show("proxy/observability/accesslog.py").replace(
        "from proxy.observability.metrics import Metrics", "from rev_metrics import Metrics"))
    return old_log, old_metrics


async def _turns(n: int, per_turn: int) -> float:
    start = time.thread_time()
    for i in range(n):
        if i % per_turn == per_turn - 1:
            await asyncio.sleep(0)
    return time.thread_time() - start


async def _hook(pair: Pair, where: str, path: Path, n: int, per_turn: int) -> float:
    """CPU seconds for ``n`` requests, loop turns included."""
    log_module, metrics_module = pair
    sink = None if where == "none" else log_module.AccessSink(None if where == "stdout" else path)
    hook = log_module.make_access_logger(sink, metrics_module.Metrics(Stats()), "json" if where == "json" else
                                         "combined")(None, "")
    request, response = _request(), web.StreamResponse(status=200)
    start = time.thread_time()
    for i in range(n):
        hook.log(request, response, 0.0012)
        if i % per_turn == per_turn - 1:
            await asyncio.sleep(0)  # a loop turn: batched lines are written here
    await asyncio.sleep(0)
    spent = time.thread_time() - start
    if sink is not None:
        sink.close()
    return spent


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("n", type=int, nargs="?", default=20000)
    parser.add_argument("--against", metavar="REV")
    args = parser.parse_args()
    n = args.n
    with tempfile.TemporaryDirectory() as tmp:
        pairs = {"now": (accesslog, metrics)}
        if args.against:
            pairs = {args.against: _load(args.against, Path(tmp)), **pairs}
        path = Path(tmp) / "access.log"
        # stdout is measured when it is not a terminal: run with `| cat >/dev/null` (a pipe, as under docker)
        wheres = ["none", "file", "json"] + ([] if sys.stdout.isatty() else ["stdout"])
        for where in wheres:
            for per_turn in (1, 32):
                turns = min([await _turns(n, per_turn) for _ in range(ROUNDS)])
                best = dict.fromkeys(pairs, float("inf"))
                for _ in range(ROUNDS):
                    for name, pair in pairs.items():
                        best[name] = min(best[name], await _hook(pair, where, path, n, per_turn) - turns)
                shown = "  ".join(f"{name} {t / n * 1e6:5.2f} µs" for name, t in best.items())
                print(f"{where:6} {per_turn:2} a turn: {shown}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
