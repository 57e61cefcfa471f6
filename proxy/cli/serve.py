"""``serve``, ``check-config`` and ``reload``: the commands that act on the whole ``proxy.yml``.

``serve`` imports the server (and with it aiohttp) inside the function, so
every other command, ``check-config`` included, starts without it: a user
edit on a box where aiohttp is broken or slow to import still works.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime

from proxy.cli.checks_files import check_tls
from proxy.cli.common import Subparsers, add_config_argument
from proxy.config import Config, load_or_exit
from proxy.ops.instance import InstanceError, claim, release, signal_instance

__all__ = ["add_serve_commands", "cmd_check_config", "cmd_reload", "cmd_serve"]

log = logging.getLogger(__name__)


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
        log.warning("RAP_UVLOOP=1 but uvloop is not installed")
        return None
    return uvloop.new_event_loop


def warn_at_start(config: Config, now: datetime | None = None) -> None:
    """Log what ``check-config`` would flag in the served certificate: expired (error) or expiring (warning).

    An operator who never runs ``check-config`` would otherwise learn of it
    only from clients. The backend is not asked here: a request at start
    would reach the registry before any client's, and ``/readyz`` and
    ``check-config`` already say when it demands its own auth. A pair that
    does not load is left to ``serve``, which refuses to start with the same
    sentence.
    """
    if config.tls is None:
        return
    failing: list[str] = []
    warnings: list[str] = []
    check_tls(config.tls, now or datetime.now(UTC), [], failing, warnings)
    for line in failing:
        log.error("%s", line)
    for line in warnings:
        log.warning("%s", line)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run the proxy until SIGTERM/SIGINT; exit 1 with one log line if it cannot start (port, certificate).

    The pid file is written before the listeners open and removed at exit,
    so ``registry-auth-proxy reload`` signals this instance and no other.
    With ``workers`` > 1 this process is the supervisor of the workers
    (``proxy.server.workers``): the pid file names it, and it relays signals.
    """
    config = load_or_exit(args.config, announce=True)
    from proxy.server import serve  # lazy: the only command that needs aiohttp

    try:
        if config.pid_file is not None:
            claim(config.pid_file)
    except (OSError, InstanceError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    warn_at_start(config)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            if config.workers == 1:
                runner.run(serve(config))
            else:
                from proxy.server.workers import supervise

                runner.run(supervise(config))
    except (OSError, ValueError) as exc:
        log.error("cannot start: %s", exc)
        return 1
    finally:
        if config.pid_file is not None:
            release(config.pid_file)
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    """SIGHUP to the instance serving this config: what ``systemctl reload`` does, without systemd."""
    config = load_or_exit(args.config, announce=True)
    try:
        pid = signal_instance(config.pid_file)
    except (InstanceError, OSError) as exc:
        print(f"reload: {exc}", file=sys.stderr)
        return 1
    print(f"reload: sent SIGHUP to pid {pid}; its log says what was reloaded (or why not)")
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    config = load_or_exit(args.config, announce=True)
    from proxy.cli.checks import check_config  # lazy: only this command reads the user files

    return check_config(config)


def add_serve_commands(sub: Subparsers) -> None:
    """Register ``serve`` and ``check-config``."""
    serve = sub.add_parser("serve", help="run the proxy")
    add_config_argument(serve)
    serve.set_defaults(func=cmd_serve)
    check = sub.add_parser("check-config", help="validate the config and show the effective policy")
    add_config_argument(check)
    check.set_defaults(func=cmd_check_config)
    reload = sub.add_parser("reload", help="make the running instance of this config re-read it (SIGHUP)")
    add_config_argument(reload)
    reload.set_defaults(func=cmd_reload)
