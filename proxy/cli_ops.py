"""``maintenance on|off|status`` and ``gc --run COMMAND``: garbage collection without a firewall.

The seed had to stop the registry (or firewall it) to collect garbage,
because a push during collection can leave a manifest pointing at deleted
blobs. ``gc`` makes that one command: switch writes off (the maintenance
file, seen by every replica within a second), wait until no write is in
flight, run the collector, switch writes back on whatever happened.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from proxy.config import Config, load_or_exit
from proxy.maintenance import INTERVAL

DEFAULT_CONFIG = "proxy.yml"
POLL = 0.2
NO_ADMIN_WAIT = 2.0


def switch_on(path: Path, reason: str) -> None:
    """Create the flag atomically (write a temp file, rename) so no reader sees half a line."""
    line = f"{reason or 'maintenance'} (since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, by {getpass.getuser()})\n"
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(line, encoding="utf-8")
    tmp.replace(path)


def switch_off(path: Path) -> None:
    path.unlink(missing_ok=True)


def cmd_maintenance(args: argparse.Namespace) -> int:
    path = load_or_exit(args.config).maintenance_file
    try:
        if args.state == "on":
            switch_on(path, args.reason)
        elif args.state == "off":
            switch_off(path)
    except OSError as exc:
        print(f"maintenance: cannot change {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if path.exists():
        print(f"maintenance: on ({path}): writes get 503, reads work")
        print("  " + path.read_text(encoding="utf-8", errors="replace").strip())
    else:
        print(f"maintenance: off ({path} absent)")
    return 0


def admin_urls(config: Config, extra: list[str]) -> list[str]:
    if extra:
        return [u.rstrip("/") for u in extra]
    if not config.admin.listen:
        return []
    host, _, port = config.admin.listen.rpartition(":")
    host = host.strip("[]")
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    return [f"http://{'[' + host + ']' if ':' in host else host}:{port}"]


def writes_in_flight(url: str) -> int | None:
    """The proxy's in-flight write count; None if it does not answer (not running)."""
    try:
        with urllib.request.urlopen(url + "/inflight", timeout=2) as resp:
            return int(json.load(resp)["writes"])
    except (OSError, ValueError, KeyError):
        return None


def wait_for_writes(urls: list[str], timeout: float) -> bool:
    """Wait until every proxy reports no write in flight; False on timeout."""
    time.sleep(2 * INTERVAL)  # every replica has now re-read the flag; later writes are refused
    if not urls:
        print(f"gc: warning: admin listener is off; cannot see writes in flight, waiting {NO_ADMIN_WAIT:g}s",
              file=sys.stderr)
        time.sleep(NO_ADMIN_WAIT)
        return True
    deadline = time.monotonic() + timeout
    while True:
        counts = {url: writes_in_flight(url) for url in urls}
        busy = {u: n for u, n in counts.items() if n}
        for url, n in counts.items():
            if n is None:
                print(f"gc: warning: {url}/inflight does not answer; assuming that proxy is not running",
                      file=sys.stderr)
        if not busy:
            return True
        if time.monotonic() >= deadline:
            print(f"gc: writes still in flight after {timeout:g}s: {busy}", file=sys.stderr)
            return False
        time.sleep(POLL)
        urls = list(busy)


def cmd_gc(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    flag = config.maintenance_file
    was_on = flag.exists()
    if not was_on:
        switch_on(flag, "garbage collection")
    print(f"gc: maintenance on ({flag}); waiting for writes in flight", flush=True)
    try:
        if not wait_for_writes(admin_urls(config, args.admin), args.timeout):
            print("gc: not running the command", file=sys.stderr)
            return 1
        print(f"gc: running: {args.run}", flush=True)
        started = time.monotonic()
        code = subprocess.run(args.run, shell=True, check=False).returncode  # the operator's own command line
        print(f"gc: command exited {code} after {time.monotonic() - started:.1f}s", flush=True)
        return code
    finally:
        if was_on:
            print("gc: maintenance was already on before gc; leaving it on", flush=True)
        else:
            switch_off(flag)
            print("gc: maintenance off; writes accepted again", flush=True)


def add_ops_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Register ``maintenance`` and ``gc`` on the main parser's subcommands."""
    m = sub.add_parser("maintenance", help="read-only mode: refuse pushes and deletes (503), keep pulls")
    m.add_argument("state", choices=["on", "off", "status"])
    m.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: ./proxy.yml)")
    m.add_argument("--reason", default="", help="shown to clients in the 503 message")
    m.set_defaults(func=cmd_maintenance)
    gc = sub.add_parser("gc", help="run a garbage collection with writes switched off")
    gc.add_argument("--run", required=True, metavar="COMMAND",
                    help='e.g. "docker-registry garbage-collect /etc/docker/registry/config.yml"')
    gc.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: ./proxy.yml)")
    gc.add_argument("--timeout", type=float, default=300.0, help="max seconds to wait for writes in flight")
    gc.add_argument("--admin", action="append", default=[], metavar="URL",
                    help="admin URL of a replica to wait for (repeat for each); default: this config's admin.listen")
    gc.set_defaults(func=cmd_gc)
