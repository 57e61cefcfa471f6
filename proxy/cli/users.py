"""``user ...`` and ``group ...`` subcommands: edit the htpasswd and group files.

Usage (each also takes ``--config PATH`` (default ./proxy.yml), ``--htpasswd FILE``
and ``--groups FILE``; the overrides let the commands work without a config file)::

    user add NAME [--cost N] [--password-stdin]     fails if NAME exists
    user passwd NAME [--cost N] [--password-stdin]  fails if NAME does not exist
    user remove NAME                                 also removes NAME from all groups
    user list                                        warns (stderr) about odd hash costs/schemes
    group add GROUP USER                             warns if USER has no password entry
    group remove GROUP USER                          the group line stays, maybe empty
    group list

Exit codes: 0 done; 1 the change makes no sense for the current files (user
exists / unknown, not a member) or a file could not be written; 2 bad input
(invalid name, empty or mismatched password, unusable config).

Why edits go through ``auth.userfiles.atomic.rewrite``: the running proxy re-reads these
files, so it must never see a partial write, and parallel CLI calls must not
lose updates. The bcrypt hash is computed *before* the lock is taken so a slow
cost does not block other writers; existence checks happen *inside* the lock.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import dataclass
from pathlib import Path

from auth.userfiles import groups as group_file
from auth.userfiles import htpasswd as htpasswd_file
from auth.userfiles.atomic import read_lines, rewrite
from auth.userfiles.hashing import DEFAULT_COST, MAX_COST, MIN_COST, hash_password, odd_hashes
from proxy.cli.common import BadInput as _BadInput
from proxy.cli.common import Handler, Subparsers, add_config_argument
from proxy.cli.common import Refused as _Refused
from proxy.cli.common import guarded as _guarded
from proxy.config import find_config, load_config

__all__ = ["add_user_commands"]





def add_user_commands(subparsers: Subparsers) -> None:
    """Register ``user`` and ``group`` on an existing ``add_subparsers()`` object."""
    common = argparse.ArgumentParser(add_help=False)
    add_config_argument(common)
    common.add_argument("--htpasswd", type=Path, help="htpasswd file; overrides auth.htpasswd")
    common.add_argument("--groups", type=Path, help="group file; overrides auth.groups")
    pw = argparse.ArgumentParser(add_help=False)
    pw.add_argument("--cost", type=int, default=DEFAULT_COST,
                    help=f"bcrypt cost {MIN_COST}-{MAX_COST} ({DEFAULT_COST})")
    pw.add_argument("--password-stdin", action="store_true", help="read the password from stdin, no prompt")

    user_parser = subparsers.add_parser("user", help="manage htpasswd users")
    user = user_parser.add_subparsers(dest="user_cmd", required=True)
    _leaf(user, "add", _user_add, "add a user (bcrypt)", [common, pw], ["name"])
    _leaf(user, "passwd", _user_passwd, "change a user's password", [common, pw], ["name"])
    _leaf(user, "remove", _user_remove, "remove a user and its group memberships", [common], ["name"])
    _leaf(user, "list", _user_list, "list users", [common], [])

    group_parser = subparsers.add_parser("group", help="manage group membership")
    group = group_parser.add_subparsers(dest="group_cmd", required=True)
    _leaf(group, "add", _group_add, "add a user to a group", [common], ["group", "user"])
    _leaf(group, "remove", _group_remove, "remove a user from a group", [common], ["group", "user"])
    _leaf(group, "list", _group_list, "list groups and members", [common], [])


def _leaf(
    subs: Subparsers,
    name: str,
    handler: Handler,
    help_text: str,
    parents: list[argparse.ArgumentParser],
    positionals: list[str],
) -> None:
    parser = subs.add_parser(name, help=help_text, description=help_text, parents=parents)
    for pos in positionals:
        parser.add_argument(pos)
    parser.set_defaults(func=_guarded(handler))




@dataclass(frozen=True)
class _Files:
    """The two files the commands edit; None where neither override nor config says."""

    htpasswd: Path | None
    groups: Path | None

    def need_htpasswd(self) -> Path:
        if self.htpasswd is None:
            raise _BadInput("no htpasswd file: set auth.htpasswd or pass --htpasswd")
        return self.htpasswd

    def need_groups(self) -> Path:
        if self.groups is None:
            raise _BadInput("no group file: set auth.groups or pass --groups")
        return self.groups


def _files(args: argparse.Namespace, *, htpasswd: bool, groups: bool) -> _Files:
    """Resolve file paths: overrides first, else the config's auth.htpasswd/auth.groups.

    The config is loaded only when a file the command needs is not overridden,
    so the commands work without any config file when both overrides are given.
    """
    found = _Files(args.htpasswd, args.groups)
    if (htpasswd and found.htpasswd is None) or (groups and found.groups is None):
        try:
            auth = load_config(find_config(args.config)).auth
        except Exception as exc:  # any config problem is a usage error at this boundary
            raise _BadInput(f"cannot use config {find_config(args.config)}: {exc}") from exc
        found = _Files(
            found.htpasswd if found.htpasswd is not None else auth.htpasswd,
            found.groups if found.groups is not None else auth.groups,
        )
    return found


def _read_password(args: argparse.Namespace) -> str:
    """One line from stdin (trailing newline dropped), or two matching getpass prompts."""
    if args.password_stdin:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    else:
        password = getpass.getpass("New password: ")
        if getpass.getpass("Re-type new password: ") != password:
            raise _BadInput("passwords do not match")
    if not password:
        raise _BadInput("empty password refused")
    return password


def _set_password(args: argparse.Namespace, *, must_exist: bool) -> int:
    user = htpasswd_file.validate_user(args.name)
    htpasswd = _files(args, htpasswd=True, groups=False).need_htpasswd()
    password_hash = hash_password(_read_password(args), cost=args.cost)

    def transform(lines: list[str]) -> list[str]:
        exists = htpasswd_file.has_user(lines, user)
        if must_exist and not exists:
            raise _Refused(f"no user {user!r} in {htpasswd}; use 'user add'")
        if not must_exist and exists:
            raise _Refused(f"user {user!r} already exists in {htpasswd}; use 'user passwd'")
        return htpasswd_file.set_user(lines, user, password_hash)

    rewrite(htpasswd, transform)
    print(f"{'updated password of' if must_exist else 'added'} user {user} in {htpasswd} (bcrypt cost {args.cost})")
    _warn_odd_hashes(htpasswd, only=user)
    return 0


def _warn_odd_hashes(htpasswd: Path, only: str | None = None) -> None:
    """Users whose hash cost or scheme differs from the rest, on stderr (stdout stays a plain list).

    Every failed login is padded to the slowest hash in the file, so a mix
    costs CPU and protects the cheap hashes less; ``only`` limits the lines to
    one user (after ``user add``/``passwd``, the one just written).
    """
    users = htpasswd_file.parse_htpasswd("\n".join(read_lines(htpasswd)), str(htpasswd))
    for line in odd_hashes(users.hashes, limit=len(users.hashes) if only else 10):
        if only is None or line.startswith(f"{only}: "):
            print(f"warning: {line}", file=sys.stderr)


def _user_add(args: argparse.Namespace) -> int:
    return _set_password(args, must_exist=False)


def _user_passwd(args: argparse.Namespace) -> int:
    return _set_password(args, must_exist=True)


def _user_remove(args: argparse.Namespace) -> int:
    """Remove from htpasswd first (that alone revokes access), then from groups."""
    user = args.name
    files = _files(args, htpasswd=True, groups=True)
    htpasswd, groups = files.need_htpasswd(), files.need_groups()
    found: list[str] = []

    def drop_user(lines: list[str]) -> list[str]:
        if htpasswd_file.has_user(lines, user):
            found.append(str(htpasswd))
        return htpasswd_file.remove_user(lines, user)

    def drop_memberships(lines: list[str]) -> list[str]:
        new = group_file.remove_user_everywhere(lines, user)
        if new != lines:
            found.append(str(groups))
        return new

    rewrite(htpasswd, drop_user)
    rewrite(groups, drop_memberships)
    if not found:
        raise _Refused(f"no user {user!r} in {htpasswd} or {groups}")
    print(f"removed user {user} from {', '.join(found)}")
    return 0


def _user_list(args: argparse.Namespace) -> int:
    htpasswd = _files(args, htpasswd=True, groups=False).need_htpasswd()
    for name in htpasswd_file.list_users(read_lines(htpasswd)):
        print(name)
    _warn_odd_hashes(htpasswd)
    return 0


def _group_add(args: argparse.Namespace) -> int:
    group, user = group_file.validate_group(args.group), htpasswd_file.validate_user(args.user)
    files = _files(args, htpasswd=False, groups=True)
    groups = files.need_groups()
    added: list[bool] = []

    def transform(lines: list[str]) -> list[str]:
        added.append(not group_file.is_member(lines, group, user))
        return group_file.add_member(lines, group, user)

    rewrite(groups, transform)
    print(f"added {user} to group {group}" if added[0] else f"{user} is already in group {group}")
    if files.htpasswd is not None and not htpasswd_file.has_user(read_lines(files.htpasswd), user):
        print(f"warning: {user} has no entry in {files.htpasswd} yet", file=sys.stderr)
    return 0


def _group_remove(args: argparse.Namespace) -> int:
    group, user = args.group, args.user
    groups = _files(args, htpasswd=False, groups=True).need_groups()

    def transform(lines: list[str]) -> list[str]:
        if not group_file.is_member(lines, group, user):
            raise _Refused(f"{user!r} is not in group {group!r} in {groups}")
        return group_file.remove_member(lines, group, user)

    rewrite(groups, transform)
    print(f"removed {user} from group {group}")
    return 0


def _group_list(args: argparse.Namespace) -> int:
    groups = _files(args, htpasswd=False, groups=True).need_groups()
    for group, members in group_file.list_groups(read_lines(groups)).items():
        print(group_file.format_line(group, members))
    return 0
