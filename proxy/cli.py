"""``registry-auth-proxy``: serve, check-config, user and group management."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable, Sequence

from proxy.cli_ops import add_ops_commands
from proxy.cli_users import add_user_commands
from proxy.config import load_or_exit
from proxy.registry_cli import add_registry_commands

DEFAULT_CONFIG = "proxy.yml"


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop only when asked for with RAP_UVLOOP=1 (and the ``fast`` extra is installed).

    Measured on the 2-core bench box: uvloop cut CPU per small request by ~10 %
    but raised CPU per GB of TLS blob pull from ~1.8 s to ~2.4-3.4 s, so the
    standard loop is the default (bench/RESULTS.md).
    """
    if os.environ.get("RAP_UVLOOP") != "1":
        return None
    try:
        import uvloop
    except ImportError:
        logging.getLogger("registry_auth_proxy").warning("RAP_UVLOOP=1 but uvloop is not installed")
        return None
    return uvloop.new_event_loop


def cmd_serve(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    from proxy.server import serve

    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(serve(config))
    except (OSError, ValueError) as exc:
        logging.getLogger("registry_auth_proxy").error("cannot start: %s", exc)
        return 1
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config)
    from proxy.checks import check_config

    return check_config(config)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="registry-auth-proxy",
        description="Authenticating TLS reverse proxy for a Docker/OCI registry.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: ./proxy.yml)")
    serve.set_defaults(func=cmd_serve)
    check = sub.add_parser("check-config", help="validate the config and show the effective policy")
    check.add_argument("--config", default=DEFAULT_CONFIG, help="config file (default: ./proxy.yml)")
    check.set_defaults(func=cmd_check_config)
    add_user_commands(sub)
    add_ops_commands(sub)
    add_registry_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    args = build_parser().parse_args(argv)
    return int(args.func(args))
