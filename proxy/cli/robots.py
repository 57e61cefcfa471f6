"""``robot ...`` subcommands: scoped, expiring, revocable credentials for CI (``robot$NAME``).

Usage (each also takes ``--config PATH`` and ``--robots FILE``, which
overrides ``auth.robots`` and lets the commands work without a config)::

    robot add NAME --push GLOB [--pull GLOB] [--delete GLOB] [--group G] --expires 90d
              [--description TEXT] [--json]      prints the secret, once
    robot rotate NAME [--expires 90d] [--json]   a new secret, same scopes (old one dies)
    robot remove NAME                            its logins and tokens stop within a second
    robot list [--json]                          expired ones marked
    robot show NAME [--json]

Exit codes as ``user``: 0 done; 1 the change does not apply (robot exists /
unknown) or a file could not be written; 2 bad input.

Why edits go through ``auth.userfiles.atomic.rewrite``: the same lock and
atomic rename as htpasswd, so the running proxy never reads half a file and
ten CI pipelines creating robots at once lose none. Only the secret's
SHA-256 is written; the secret itself is printed once and never stored.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import time
from pathlib import Path

from auth.access import Access, Action, Identity
from auth.userfiles import robots as robot_file
from auth.userfiles.atomic import read_lines, rewrite
from proxy.cli.common import BadInput as _BadInput
from proxy.cli.common import Handler, Subparsers, add_config_argument
from proxy.cli.common import Refused as _Refused
from proxy.cli.common import guarded as _guarded
from proxy.config import find_config, load_config

__all__ = ["add_robot_commands"]

HEADER = ("# Robot accounts (robot$NAME), one per line: NAME: {JSON}. Edit with `registry-auth-proxy robot`; "
          "secrets are stored as SHA-256 only.")




def add_robot_commands(subparsers: Subparsers) -> None:
    """Register ``robot`` on an existing ``add_subparsers()`` object."""
    common = argparse.ArgumentParser(add_help=False)
    add_config_argument(common)
    common.add_argument("--robots", type=Path, help="robots file; overrides auth.robots")
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--json", action="store_true", help="machine-readable output on stdout")

    robot = subparsers.add_parser("robot", help="manage robot accounts (CI credentials)").add_subparsers(
        dest="robot_cmd", required=True)
    add = _leaf(robot, "add", _add, "create a robot and print its secret once", [common, out], ["name"])
    for action in Action:
        add.add_argument(f"--{action.value}", action="append", default=[], metavar="GLOB",
                         help=f"repositories it may {action.value} (team-a/**); repeat or comma-separate"
                         + ("; push and delete imply pull" if action is Action.PULL else ""))
    add.add_argument("--group", action="append", default=[], help="a group whose access rules apply to it")
    add.add_argument("--expires", required=True, help="90d, 12h, 30m, 2s, 4w, or a date (2025-12-31)")
    add.add_argument("--description", default="", help="one line: what uses it, who owns it")
    rotate = _leaf(robot, "rotate", _rotate, "give a robot a new secret (same scopes)", [common, out], ["name"])
    rotate.add_argument("--expires", help="a new expiry (default: keep it)")
    _leaf(robot, "remove", _remove, "remove a robot (its tokens die too)", [common], ["name"])
    _leaf(robot, "list", _list, "list robots", [common, out], [])
    _leaf(robot, "show", _show, "show one robot", [common, out], ["name"])


def _leaf(subs: Subparsers, name: str, handler: Handler, help_text: str,
          parents: list[argparse.ArgumentParser], positionals: list[str]) -> argparse.ArgumentParser:
    parser = subs.add_parser(name, help=help_text, description=help_text, parents=parents)
    for pos in positionals:
        parser.add_argument(pos)
    parser.set_defaults(func=_guarded(handler))
    return parser




def _config_access(args: argparse.Namespace) -> tuple[Path | None, Access | None]:
    """``auth.robots`` and ``access`` from the config; with ``--robots`` a missing config is no error."""
    try:
        config = load_config(find_config(args.config))
    except Exception as exc:  # any config problem is a usage error at this boundary
        if args.robots is not None:
            return None, None
        raise _BadInput(f"cannot use config {find_config(args.config)}: {exc}") from exc
    return config.auth.robots, config.access


def _path(args: argparse.Namespace) -> Path:
    if args.robots is not None:
        return Path(args.robots)
    path, _ = _config_access(args)
    if path is None:
        raise _BadInput("auth.robots is null: robot accounts are off (set it, or pass --robots)")
    return path


def _globs(values: list[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(g.strip() for v in values for g in v.split(",") if g.strip()))


def _sample(glob: str) -> str:
    """A repository name the glob matches (``team-a/**`` -> ``team-a/x``): to probe ``access`` with."""
    return re.sub(r"\*\*|\*|\?", "x", glob)


def _access_warnings(robot: robot_file.Robot, access: Access | None) -> list[str]:
    """Scopes ``access`` makes useless: a robot is a users-level identity plus its own groups."""
    if access is None:
        return []
    who = Identity(robot.username, robot.groups)
    out = []
    for action in Action:
        for glob in robot.scopes.globs(action):
            rule = access.rule(action, _sample(glob))
            if not rule.admits(who):
                out.append(f"access gives {action.value} on {_sample(glob)} only to {rule.describe()}: "
                           f"{robot.username} cannot {action.value} {glob} until it is "
                           + (f"given --group {sorted(rule.groups)[0]}" if rule.groups else "allowed there"))
    return out


def _created(args: argparse.Namespace, path: Path, robot: robot_file.Robot, secret: str, verb: str) -> int:
    expires = robot_file.format_time(robot.expires)
    if args.json:
        print(json.dumps({"username": robot.username, "secret": secret, "expires": expires}))
    else:
        print(f"username: {robot.username}\nsecret:   {secret}\nexpires:  {expires}")
        print(f"{verb} robot {robot.username} in {path} ({robot.scopes.describe()}). The secret is shown only "
              f"now: keep it in your CI's secret store.", file=sys.stderr)
    return 0


def _add(args: argparse.Namespace) -> int:
    name = robot_file.validate_name(args.name)
    path = _path(args)
    now = time.time()
    secret = robot_file.new_secret()
    robot = robot_file.make_robot(
        name, robot_file.hash_secret(secret), push=_globs(args.push), pull=_globs(args.pull),
        delete=_globs(args.delete), groups=frozenset(args.group), created=now,
        expires=robot_file.parse_expiry(args.expires, now), description=args.description)

    def transform(lines: list[str]) -> list[str]:
        if robot_file.has_robot(lines, name):
            raise _Refused(f"robot {name!r} already exists in {path}; use 'robot rotate' or 'robot remove'")
        return robot_file.set_robot(lines or [HEADER], robot)

    rewrite(path, transform)
    for warning in _access_warnings(robot, _config_access(args)[1]):
        print(f"warning: {warning}", file=sys.stderr)
    return _created(args, path, robot, secret, "added")


def _rotate(args: argparse.Namespace) -> int:
    name, path, now = args.name, _path(args), time.time()
    secret = robot_file.new_secret()
    expires = robot_file.parse_expiry(args.expires, now) if args.expires else None
    done: list[robot_file.Robot] = []

    def transform(lines: list[str]) -> list[str]:
        old = robot_file.find(lines, name)
        if old is None:
            raise _Refused(f"no usable robot {name!r} in {path}" + (" (its line is corrupt: remove and add it)"
                                                                    if robot_file.has_robot(lines, name) else ""))
        if expires is None and old.expired(now):
            raise _Refused(f"robot {name!r} expired on {robot_file.format_time(old.expires)}: pass --expires")
        new = dataclasses.replace(old, secret_hash=robot_file.hash_secret(secret),
                                  expires=old.expires if expires is None else expires)
        done.append(new)
        return robot_file.set_robot(lines, new)

    rewrite(path, transform)
    return _created(args, path, done[0], secret, "rotated")


def _remove(args: argparse.Namespace) -> int:
    name, path = args.name, _path(args)

    def transform(lines: list[str]) -> list[str]:
        if not robot_file.has_robot(lines, name):
            raise _Refused(f"no robot {name!r} in {path}")
        return robot_file.remove_robot(lines, name)

    rewrite(path, transform)
    print(f"removed robot {robot_file.ROBOT_PREFIX}{name} from {path}; its logins and tokens stop within a second")
    return 0


def _describe(robot: robot_file.Robot, now: float) -> dict[str, object]:
    return {"username": robot.username, "push": list(robot.scopes.push), "pull": list(robot.scopes.pull),
            "delete": list(robot.scopes.delete), "groups": sorted(robot.groups),
            "created": robot_file.format_time(robot.created), "expires": robot_file.format_time(robot.expires),
            "expired": robot.expired(now), "description": robot.description}


def _read(path: Path) -> robot_file.RobotData:
    data = robot_file.parse_robots("\n".join(read_lines(path)), str(path))
    for warning in data.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return data


def _list(args: argparse.Namespace) -> int:
    data, now = _read(_path(args)), time.time()
    robots = sorted(data.robots.values(), key=lambda r: r.name)
    if args.json:
        print(json.dumps([_describe(r, now) for r in robots]))
        return 0
    for r in robots:
        state = "EXPIRED " if r.expired(now) else ""
        print(f"{r.username}\t{r.scopes.describe()}\tcreated {robot_file.format_time(r.created)}\t"
              f"{state}expires {robot_file.format_time(r.expires)}\t{r.description}")
    for name in sorted(data.disabled):
        print(f"{robot_file.ROBOT_PREFIX}{name}\tDISABLED (corrupt line; see the warning)")
    return 0


def _show(args: argparse.Namespace) -> int:
    path = _path(args)
    robot = _read(path).robots.get(args.name)
    if robot is None:
        raise _Refused(f"no usable robot {args.name!r} in {path}")
    info = _describe(robot, time.time())
    if args.json:
        print(json.dumps(info))
        return 0
    info["effective pull"] = list(robot.scopes.globs(Action.PULL))
    for key, value in info.items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else value
        print(f"{key + ':':<24}{shown if shown not in ('', None) else '-'}")
    return 0
