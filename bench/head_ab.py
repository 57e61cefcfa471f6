"""The manifest HEAD row of workload 3 alone, for trying a lever: two proxy trees (or Pythons) side by side.

    python -m bench.head_ab                                   # this tree against direct, 3 rounds of 5 s
    python -m bench.head_ab --rounds 3 --seconds 5 base=/tmp/base new=.   # A/B two checkouts
    python -m bench.head_ab new=. new313=.:/path/to/python3.13 --apache

Each ``name=TREE[:PYTHON]`` starts ``python -m proxy serve`` from TREE (with
PYTHON, default this one) in front of one shared registry; ``direct`` and
(with ``--apache``) the seed's Apache vhost run beside them. Rounds are
interleaved as in the full bench, and each run is ``hey -m HEAD -c 32``
against a manifest by tag. Prints req/s vs direct and CPU ms per request
(from /proc, the target's whole tree): the two numbers issue 15 asks about.
A full ``python -m bench`` takes 23 minutes; this takes one per round.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import yaml

from bench import targets
from bench.fixtures import REPO, Workspace, make_blob, make_workspace
from bench.loadgen import run_hey
from bench.procs import ProcessGroups
from bench.procstat import CpuMeter, settle
from bench.workloads import MANIFEST_TYPE, TAG, seed_registry


def start_proxy(ws: Workspace, pg: ProcessGroups, backend: str, name: str, tree: str, python: str,
           root: Path) -> tuple[str, int]:
    port = targets.free_port()
    run = root / name
    run.mkdir()
    config = {"listen": f"127.0.0.1:{port}", "tls": {"cert": str(ws.server_cert), "key": str(ws.server_key)},
              "backend": backend, "auth": {"htpasswd": str(ws.htpasswd), "groups": str(ws.groups)},
              "admin": {"listen": f"127.0.0.1:{targets.free_port()}"}, "pid_file": "off"}
    (run / "proxy.yml").write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONPATH=tree)
    proc = pg.start([python, "-m", "proxy", "serve", "--config", str(run / "proxy.yml")], run / "log",
                    cwd=tree, env=env)
    url = f"https://127.0.0.1:{port}"
    targets._wait_ready(url, proc.poll, run / "log", ws.ca_cert)  # the bench's own helper
    return url, proc.pid


Run = tuple[float, float, str]  # req/s, CPU ms per request, the status counts of the run


def medians(runs: dict[str, list[Run]]) -> list[str]:
    """One line per front: median req/s, its ratio to direct's, median CPU ms per request, the last statuses."""
    base = statistics.median(r for r, _, _ in runs["direct"])
    return [f"{name:15} {statistics.median(r for r, _, _ in rows):8,.0f} req/s  "
            f"{statistics.median(r for r, _, _ in rows) / base:5.3f}x direct  "
            f"{statistics.median(m for _, m, _ in rows):.3f} ms CPU/req  {rows[-1][2]}" for name, rows in runs.items()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.head_ab", description=__doc__.splitlines()[0])
    parser.add_argument("proxies", nargs="*", default=["proxy=."], help="NAME=TREE[:PYTHON]")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--apache", action="store_true")
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="head-ab-"))
    pg = ProcessGroups()
    try:
        ws = make_workspace(root)
        direct = targets.start_registry(ws, pg)
        seed_registry(ws, direct, [make_blob(root / "small.bin", 1)])
        fronts = {"direct": (direct.url, direct.pid)}
        for spec in args.proxies:
            name, _, where = spec.partition("=")
            tree, _, python = where.partition(":")
            fronts[name] = start_proxy(ws, pg, direct.url, name, str(Path(tree).resolve()), python or sys.executable,
                                  root)
        if args.apache:
            apache = targets.start_apache(ws, pg, direct)
            fronts["apache"] = (apache.url, apache.pid)
        runs: dict[str, list[Run]] = {name: [] for name in fronts}
        for _ in range(args.rounds):
            for name, (url, pid) in fronts.items():
                settle([pid, direct.pid])
                meter = CpuMeter({"server": pid})
                result = run_hey(f"{url}/v2/{REPO}/manifests/{TAG}", "HEAD", args.seconds, 32,
                                 (f"Accept: {MANIFEST_TYPE}",))
                cpu = meter.stop().seconds["server"]
                ms = 0.0 if name == "direct" else cpu * 1000 / max(result.requests, 1)
                runs[name].append((result.rps, ms, result.status_text()))
                print(f"{name}: {result.rps:,.0f} req/s, {ms:.3f} ms CPU/req, {result.status_text()}", flush=True)
        print("\nmedians:")
        for line in medians(runs):
            print("  " + line)
    finally:
        pg.stop_all()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
