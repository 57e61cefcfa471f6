"""What every subcommand shares: the ``--config`` option and the subparsers type.

``--config``'s default is named here and nowhere else in the CLI, so every
command reads the same ``proxy.yml`` that ``serve`` would, and the help text
cannot drift from the value.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TypeAlias

from proxy.config import CONFIG_ENV, DEFAULT_CONFIG_PATH
from proxy.config.load import SYSTEM_CONFIG_PATH

__all__ = ["BadInput", "Handler", "Refused", "Subparsers", "add_config_argument", "guarded"]

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What ``ArgumentParser.add_subparsers()`` returns; each command module registers on one."""


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--config PATH``; without it the file is found by ``proxy.config.find_config``."""
    parser.add_argument("--config", default=None,
                        help=f"config file (default: ${CONFIG_ENV}, else ./{DEFAULT_CONFIG_PATH}, "
                             f"else {SYSTEM_CONFIG_PATH})")


Handler = Callable[[argparse.Namespace], int]


class Refused(Exception):
    """A file edit that does not apply to the file's current content (exit 1)."""


class BadInput(Exception):
    """Unusable input: names, passwords, globs, expiry, config (exit 2)."""


def guarded(handler: Handler) -> Handler:
    """Turn expected failures of the file-editing commands into one stderr line and an exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except Refused as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        except (BadInput, ValueError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        except OSError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1

    return run
