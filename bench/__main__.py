"""`python -m bench`: run the side-by-side benchmark on loopback and write RESULTS.md.

Starts its own registry, proxy, Apache and nginx (never the system instances), and
always stops them again: try/finally for the normal path, atexit plus SIGTERM/SIGHUP
handlers for the others. Installs nothing; missing Debian packages are named.
"""

from __future__ import annotations

import argparse
import atexit
import shlex
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType

from bench import document, prereq, runner, targets
from bench.fixtures import Blob, Workspace, make_blob, make_workspace
from bench.procs import ProcessGroups
from bench.settings import ALL_TARGETS, REPO_ROOT, Settings, make_settings
from bench.workloads import Context, seed_registry


def _parse(argv: list[str]) -> Settings:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="64 MiB blob, 3 s runs, 1 round, no 2 GiB row, 50 pulls")
    parser.add_argument(
        "--targets", default=",".join(ALL_TARGETS), help="comma-separated subset of " + ",".join(ALL_TARGETS)
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="report file (default bench/RESULTS.md, with --quick bench/RESULTS-quick.md)",
    )
    parser.add_argument("--rounds", type=int, default=None, help="override the round count")
    parser.add_argument(
        "--proxy-args", default="", help="extra arguments for `python -m proxy serve`"
    )
    args = parser.parse_args(argv)
    chosen = tuple(t.strip() for t in args.targets.split(",") if t.strip())
    unknown = [t for t in chosen if t not in ALL_TARGETS]
    if unknown or not chosen:
        parser.error(f"unknown target(s) {unknown}; choose from {','.join(ALL_TARGETS)}")
    ordered = tuple(t for t in ALL_TARGETS if t in chosen)
    return make_settings(args.quick, ordered, args.out, tuple(shlex.split(args.proxy_args)), args.rounds)


def _check_prerequisites(settings: Settings) -> None:
    packages = prereq.missing_packages(settings.targets)
    modules = prereq.missing_python_modules()
    if not packages and not modules:
        return
    if packages:
        print("bench: missing Debian package(s): " + " ".join(packages), file=sys.stderr)
        print("       install them with: apt-get install -y " + " ".join(packages), file=sys.stderr)
    if modules:
        print(
            "bench: missing Python module(s): " + " ".join(modules) + f" (install into {sys.executable})",
            file=sys.stderr,
        )
    sys.exit(2)


def _on_signal(signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)


def _start_fronts(
    settings: Settings, ws: Workspace, pg: ProcessGroups, direct: targets.Target
) -> tuple[list[targets.Target], dict[str, str]]:
    started: list[targets.Target] = []
    errors: dict[str, str] = {}
    for name in settings.targets:
        try:
            if name == "direct":
                started.append(direct)
            elif name == "proxy":
                started.append(targets.start_proxy(ws, pg, direct, settings.proxy_args))
            elif name == "proxy-w2":
                started.append(targets.start_proxy(ws, pg, direct, settings.proxy_args, workers=2))
            elif name == "apache":
                started.append(targets.start_apache(ws, pg, direct))
            elif name == "nginx":
                started.append(targets.start_nginx(ws, pg, direct))
        except targets.TargetError as exc:
            errors[name] = str(exc)
            print(f"bench: target {name} did not start, continuing without it:\n{exc}", file=sys.stderr)
    return started, errors


def main(argv: list[str] | None = None) -> int:
    settings = _parse(sys.argv[1:] if argv is None else argv)
    _check_prerequisites(settings)
    began = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="regbench-"))
    pg = ProcessGroups()

    def cleanup() -> None:
        pg.stop_all()
        shutil.rmtree(tmp, ignore_errors=True)

    atexit.register(cleanup)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _on_signal)
    try:
        print(f"bench: workspace {tmp}; measuring the AES-GCM ceiling", file=sys.stderr)
        openssl_mbps, openssl_line = prereq.openssl_speed_mbps()
        ws = make_workspace(tmp)
        big = make_blob(tmp / "big.bin", settings.big_blob_mib)
        small = make_blob(tmp / "small.bin", settings.small_blob_mib)
        huge: Blob | None = None
        if settings.huge_blob_mib and "proxy" in settings.targets:
            huge = make_blob(tmp / "huge.bin", settings.huge_blob_mib)
        direct = targets.start_registry(ws, pg)
        seed_registry(ws, direct, [big, small])
        started, start_errors = _start_fronts(settings, ws, pg, direct)
        ctx = Context(settings, ws, direct, big, small, huge)
        results = runner.execute(ctx, started, settings.rounds)
        for name in start_errors:
            for step in runner.plan():
                if not step.only or name in step.only:
                    results[(step.row, name)] = runner.Runs(errors=[runner.NOT_STARTED])
        info = document.RunInfo(
            command="python -m bench " + " ".join(sys.argv[1:] if argv is None else argv),
            settings=settings,
            versions=prereq.collect_versions(prereq.proxy_version_string(str(REPO_ROOT))),
            tls={t.name: targets.negotiated_tls(t.url, ws.ca_cert) for t in started if t.tls},
            start_errors=start_errors,
            openssl_mbps=openssl_mbps,
            openssl_line=openssl_line,
            wall_s=time.monotonic() - began,
        )
        text = document.render(info, results)
    finally:
        cleanup()
    print(text)
    settings.out.write_text(text)
    print(f"bench: wrote {settings.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
