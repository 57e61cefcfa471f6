"""``throttle list|clear``: see and forgive failed-login counters through the admin listener.

The counters live in the running proxy's memory, so this asks its admin
listener (``GET`` / ``DELETE /throttle``), found the way ``gc`` finds it:
``--admin URL`` (repeat it for each replica: every replica throttles on its
own), else this config's ``admin.listen`` on loopback. Standard library
only (``urllib``), like the rest of the CLI but ``serve``.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request

from proxy.cli.common import Subparsers, add_config_argument
from proxy.config import load_or_exit
from proxy.ops.gc import admin_urls

__all__ = ["add_throttle_commands", "format_entries"]

TIMEOUT = 10.0
COLUMNS = ("kind", "address", "user", "failures", "in_flight", "limit", "seconds_until_free", "delay")
HEADINGS = ("KIND", "ADDRESS", "USER", "FAILURES", "IN_FLIGHT", "LIMIT", "FREE_IN", "DELAY")


def _call(method: str, url: str) -> dict[str, object]:
    request = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(request, timeout=TIMEOUT) as resp:
        data = json.load(resp)
    if not isinstance(data, dict):
        raise ValueError("not a JSON object")
    return data


def _query(args: argparse.Namespace, everything: bool = False) -> str:
    params = {k: v for k, v in (("address", args.address), ("user", args.user)) if v}
    if everything:
        params["all"] = "1"
    return "?" + urllib.parse.urlencode(params) if params else ""


def _cell(column: str, value: object) -> str:
    if value is None:
        return "-"
    if column == "seconds_until_free":
        return f"{value}s" if value else "free"
    if column == "delay":
        return f"{value:g}s" if value else "-"
    return str(value)


def format_entries(entries: list[dict[str, object]]) -> str:
    """A fixed-width table, one key a line; ``FREE_IN`` is when a refused key admits checks again."""
    rows = [HEADINGS] + [tuple(_cell(c, e.get(c)) for c in COLUMNS) for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def _urls(args: argparse.Namespace) -> list[str]:
    urls = admin_urls(load_or_exit(args.config), args.admin)
    if not urls:
        print("throttle: admin.listen is off in the config; pass --admin URL of a running proxy", file=sys.stderr)
    return urls


def cmd_list(args: argparse.Namespace) -> int:
    urls = _urls(args)
    status = 0 if urls else 2
    for url in urls:
        try:
            data = _call("GET", url + "/throttle" + _query(args))
        except (OSError, ValueError) as exc:
            print(f"throttle: {url}/throttle: {exc}", file=sys.stderr)
            status = 1
            continue
        entries = data.get("entries")
        entries = entries if isinstance(entries, list) else []
        if args.json:
            print(json.dumps({"admin": url, **data}))
            continue
        if len(urls) > 1:
            print(f"# {url}")
        if data.get("enabled") is False:
            print("throttling is off (throttle.enabled: false)")
        elif not entries:
            print("no failed logins tracked")
        else:
            print(format_entries(entries))
    return status


def cmd_clear(args: argparse.Namespace) -> int:
    if not (args.all or args.address or args.user):
        print("throttle clear: name --address, --user (or both), or --all", file=sys.stderr)
        return 2
    urls = _urls(args)
    status = 0 if urls else 2
    for url in urls:
        try:
            data = _call("DELETE", url + "/throttle" + _query(args, everything=args.all))
        except urllib.error.HTTPError as exc:
            print(f"throttle: {url}/throttle: HTTP {exc.code}: {exc.read()[:200].decode(errors='replace')}",
                  file=sys.stderr)
            status = 1
            continue
        except (OSError, ValueError) as exc:
            print(f"throttle: {url}/throttle: {exc}", file=sys.stderr)
            status = 1
            continue
        print(f"{url}: cleared {data.get('cleared', 0)} key(s)")
    return status


def add_throttle_commands(sub: Subparsers) -> None:
    """Register ``throttle list`` and ``throttle clear`` on the main parser's subcommands."""
    t = sub.add_parser("throttle", help="list or clear failed-login counters of a running proxy")
    actions = t.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, func, what in (("list", cmd_list, "show tracked keys (refused ones first)"),
                             ("clear", cmd_clear, "forgive matching keys")):
        p = actions.add_parser(name, help=what)
        add_config_argument(p)
        p.add_argument("--address", help="only keys of this client address")
        p.add_argument("--user", help="only keys of this user name")
        p.add_argument("--admin", action="append", default=[], metavar="URL",
                       help="admin URL of a replica (repeat for each); default: this config's admin.listen")
        if name == "list":
            p.add_argument("--json", action="store_true", help="one JSON object per replica")
        else:
            p.add_argument("--all", action="store_true", help="clear every key")
        p.set_defaults(func=func)
