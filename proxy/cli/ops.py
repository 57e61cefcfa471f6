"""``maintenance on|off|status`` and ``gc --run COMMAND``: the argparse and printing half.

The work lives in ``proxy.ops`` (the flag file in ``maintenance``, the
drain-and-collect sequence in ``gc``), shared with the server, which reads the
same file. Nothing here or there imports aiohttp, so these commands start fast
and work on a host where the server's dependencies are broken.
"""

from __future__ import annotations

import argparse
import sys

from proxy.cli.common import Subparsers, add_config_argument
from proxy.config import load_or_exit
from proxy.ops import gc
from proxy.ops.maintenance import switch_off, switch_on

__all__ = ["add_ops_commands"]


def cmd_maintenance(args: argparse.Namespace) -> int:
    path = load_or_exit(args.config, announce=True).maintenance_file
    try:
        if args.state == "on":
            switch_on(path, args.reason, args.until)
        elif args.state == "off":
            switch_off(path)
    except OSError as exc:
        print(f"maintenance: cannot change {path}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    if path.exists():
        print(f"maintenance: on ({path}): pushes and deletes get 423 with the reason below, pulls work")
        print("  " + path.read_text(encoding="utf-8", errors="replace").strip())
    else:
        print(f"maintenance: off ({path} absent)")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config, announce=True)
    return gc.run(config, args.run, args.timeout, gc.admin_urls(config, args.admin), args.force)


def add_ops_commands(sub: Subparsers) -> None:
    """Register ``maintenance`` and ``gc`` on the main parser's subcommands."""
    m = sub.add_parser("maintenance",
                       help="read-only mode: refuse pushes and deletes (423, with the reason), keep pulls")
    m.add_argument("state", choices=["on", "off", "status"])
    add_config_argument(m)
    m.add_argument("--reason", default="", help="shown to clients (docker and podman print it)")
    m.add_argument("--until", default="", metavar="WHEN",
                   help='when writes are expected back, shown to clients, e.g. "at 16:00 UTC"')
    m.set_defaults(func=cmd_maintenance)
    g = sub.add_parser("gc", help="run a garbage collection with writes switched off")
    g.add_argument("--run", required=True, metavar="COMMAND",
                   help='e.g. "docker-registry garbage-collect /etc/docker/registry/config.yml"')
    add_config_argument(g)
    g.add_argument("--timeout", type=float, default=300.0, help="max seconds to wait for writes in flight")
    g.add_argument("--admin", action="append", default=[], metavar="URL",
                   help="admin URL of a replica to wait for (repeat for each); default: this config's admin.listen")
    g.add_argument("--force", action="store_true",
                   help="collect even when a replica's admin listener does not answer (only if it is stopped)")
    g.set_defaults(func=cmd_gc)
