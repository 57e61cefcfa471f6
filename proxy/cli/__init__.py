"""``registry-auth-proxy`` (and ``python -m proxy``): one argparse front-end, a module per command group.

* ``serve``          ``serve``, ``check-config``, ``reload`` (``checks``: what check-config prints)
* ``users``          ``user ...``, ``group ...``: edit the htpasswd and group files
* ``ops``            ``maintenance on|off|status``, ``gc --run``
* ``registry``       ``registry catalog|tags|inspect|delete`` (``registry_client``: the HTTP side)
* ``common``         ``--config`` and what the modules share

Importing this package imports no aiohttp and nothing from ``proxy.server``,
``proxy.http`` or ``proxy.observability``: only ``serve`` loads the server, when
it runs. A user edit or a maintenance switch must not depend on the server's
stack importing cleanly (tests/proxy/cli/test_imports.py holds this).
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from proxy import version
from proxy.cli.ops import add_ops_commands
from proxy.cli.registry import add_registry_commands
from proxy.cli.robots import add_robot_commands
from proxy.cli.serve import add_serve_commands
from proxy.cli.throttle import add_throttle_commands
from proxy.cli.users import add_user_commands

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The whole command line; each module registers its own subcommands."""
    parser = argparse.ArgumentParser(
        prog="registry-auth-proxy",
        description="Authenticating TLS reverse proxy for a Docker/OCI registry.",
    )
    parser.add_argument("--version", action="version", version=f"registry-auth-proxy {version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_commands(sub)
    add_user_commands(sub)
    add_ops_commands(sub)
    add_registry_commands(sub)
    add_throttle_commands(sub)
    add_robot_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default ``sys.argv[1:]``), run the command, return its exit status."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    args = build_parser().parse_args(argv)
    return int(args.func(args))
