"""``check-config``: validate, show the effective policy, and warn about what will bite.

The config has already parsed when we get here (errors exit earlier); this
adds the checks that need the outside world (files, the backend, the key)
and the ones about a policy that is valid but cannot work:

* push or delete granted to people pull does not admit. The registry's own
  token auth asks for pull with every push (``appendAccessRecords``) and
  docker HEADs each blob before it uploads or mounts it, so such a user's
  push fails half-way: blobs were mounted, no manifest was written, and an
  empty repository now shows in the catalog.
* a group named in ``access`` that the group file does not define: a typo
  (``pushers``) silently grants nobody.

What ``serve`` loads (TLS files, user files, ports, backend) is checked in
``checks_files`` with the functions ``serve`` uses. Errors are split by their
effect: ``serve`` would refuse to start, or it would start and every client
would fail (a backend that demands its own auth, an expired certificate).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Network

from auth.access import Access, Action, Network, Rule
from auth.keys import read_token_key
from auth.userfiles.groups import GroupData
from auth.userfiles.robots import expiry_warnings, parse_robots
from proxy.cli.checks_files import check_backend, check_tls, listen_clash, user_files
from proxy.config import Config
from proxy.config.access import access_table

__all__ = ["access_warnings", "check_config"]

WRITES = (Action.PUSH, Action.DELETE)


def _places(access: Access) -> Iterator[tuple[str, dict[Action, Rule], frozenset[Action]]]:
    """Each place rules are written: its name, its effective rules, and the actions it sets itself.

    A repository entry's unset actions fall back to the defaults, so its
    effective rules are what a request would meet there.
    """
    defaults = {a: access.default(a) for a in Action}
    yield "access (the defaults)", defaults, frozenset(Action)
    for i, entry in enumerate(access.repositories):
        own = frozenset(a for a in Action if entry.for_action(a) is not None)
        yield (f"access.repositories[{i}] ({entry.match})",
               {a: entry.for_action(a) or defaults[a] for a in Action}, own)


def _subnets(inner: tuple[Network, ...], outer: tuple[Network, ...]) -> bool:
    """Every client ``inner`` accepts, ``outer`` accepts too (empty: from anywhere)."""
    if not outer:
        return True
    return bool(inner) and all(any(_inside(n, o) for o in outer) for n in inner)


def _inside(inner: Network, outer: Network) -> bool:
    if isinstance(inner, IPv4Network) and isinstance(outer, IPv4Network):
        return inner.subnet_of(outer)
    if isinstance(inner, IPv6Network) and isinstance(outer, IPv6Network):
        return inner.subnet_of(outer)
    return False


WHY = {
    Action.PUSH: "docker needs pull to push (it checks each blob first), so their push dies after the blobs "
                 "were mounted and leaves an empty repository in the catalog",
    Action.DELETE: "deleting a tag needs its digest, which only a pull (HEAD of the manifest) tells",
}


def _write_without_pull(access: Access) -> Iterator[str]:
    """Once per place whose own cells grant a write to someone its pull refuses (networks included)."""
    for where, rules, own in _places(access):
        pull = rules[Action.PULL]
        short = [a for a in WRITES if (Action.PULL in own or a in own)
                 and not (pull.covers(rules[a]) and _subnets(rules[a].networks, pull.networks))]
        if short:
            granted = " and ".join(f"{a.value} to {rules[a].describe()}" for a in short)
            yield (f"{where} grants {granted} but pull only to {pull.describe()}: "
                   + "; ".join(WHY[a] for a in short) + ". Give pull to everyone who may push or delete")


def _undefined_groups(access: Access, groups: GroupData | None) -> Iterator[str]:
    """Once per group that ``access`` names and the group file does not define, with where it is named."""
    named: dict[str, list[str]] = {}
    places = [("access.catalog", access.catalog)]
    places += [(f"access.{a.value}", access.default(a)) for a in Action]
    for i, entry in enumerate(access.repositories):
        places += [(f"access.repositories[{i}].{a.value}", rule) for a in Action
                   if (rule := entry.for_action(a)) is not None]
    for where, rule in places:
        for group in sorted(rule.groups):
            named.setdefault(group, []).append(where)
    source = "the group file" if groups is not None else "any group file (auth.groups is not set)"
    for group, wheres in sorted(named.items()):
        if groups is None or group not in groups.members:
            yield (f"group {group!r} (in {', '.join(wheres)}) is not defined in {source}: "
                   "nobody is in it, so it grants nothing")


def access_warnings(access: Access, groups: GroupData | None) -> list[str]:
    """The policy's own warnings; ``groups`` is the group file as the proxy parses it, None without one."""
    return [*_write_without_pull(access), *_undefined_groups(access, groups)]


def token_key_error(config: Config, warnings: list[str]) -> str | None:
    """Why ``serve`` would refuse the token key, or None; a missing ``secret_file`` only warns.

    Judged by ``auth.keys.read_token_key``, the function ``serve``'s
    ``load_token_key`` calls (that one lives with the server and imports
    aiohttp, which check-config must not load), so both refuse the same keys.
    """
    path = config.auth.token.secret_file
    if path is None:
        warnings.append("auth.token.secret_file not set: a random key per process; replicas need a shared one")
        return None
    try:
        read_token_key(path)
    except OSError as exc:
        return f"auth.token.secret_file {path}: {exc.strerror or exc}"
    except ValueError as exc:
        return str(exc)
    return None


def robot_warnings(config: Config, now: datetime) -> list[str]:
    """Robots that expired or expire within 7 days, and robot lines the proxy ignores (a corrupt entry)."""
    path = config.auth.robots
    try:
        text = path.read_text(encoding="utf-8", errors="replace") if path is not None else ""
    except FileNotFoundError:
        return []  # no robot added yet
    except OSError as exc:
        return [f"auth.robots {path}: {exc.strerror or exc}: no robot can log in"]
    data = parse_robots(text, str(path))
    return [*data.warnings, *expiry_warnings(data, now.timestamp())]


def check_config(config: Config, now: datetime | None = None) -> int:
    """Print the effective settings, the access table, every warning and every error; 0 without errors.

    1 when ``serve`` would refuse to start (TLS files, token key, admin.listen
    on the public port) or would start for nothing (a backend that demands its
    own auth, an expired certificate). ``now`` is for tests.
    """
    now = now or datetime.now(UTC)
    warnings: list[str] = []
    refused: list[str] = []  # serve would not start
    failing: list[str] = []  # serve would start and every client would fail
    print(f"config:    {config.path}")
    print(f"listen:    {'https' if config.tls else 'http'}://{config.listen}")
    if config.tls is None:
        warnings.append("tls is off: plain HTTP; only behind a TLS-terminating proxy")
    else:
        check_tls(config.tls, now, refused, failing, warnings)
    print(f"backend:   {config.backend}")
    print(f"challenge: {config.auth.challenge} (token path {config.auth.token.path}, "
          f"service {config.auth.token.service!r}, ttl {config.auth.token.ttl}s)")
    key_error = token_key_error(config, warnings)
    if key_error is not None:
        refused.append(key_error)
    users, groups = user_files(config, refused, warnings)
    print(f"users:     {len(users.hashes)} ({len(users.disabled)} disabled)")
    print(f"admin:     {'http://' + config.admin.listen if config.admin.listen else 'off'} "
          "(/metrics /healthz /readyz /inflight)")
    if (clash := listen_clash(config)) is not None:
        refused.append(clash)
    state = "ON: pushes and deletes get 503" if config.maintenance_file.exists() else "off"
    print(f"maintenance: {state} ({config.maintenance_file})")
    print("access:")
    for line in access_table(config.access):
        print(line)
    warnings.extend(access_warnings(config.access, groups if config.auth.groups is not None else None))
    warnings.extend(robot_warnings(config, now))
    check_backend(config.backend, failing, warnings)
    for warning in warnings:
        print(f"warning: {warning}")
    for error in refused + failing:
        print(f"error: {error}")
    if refused or failing:
        print("config NOT OK: " + ("serve would refuse to start" if refused
                                   else "serve would start, but clients would fail"))
        return 1
    print("config OK" + (f" with {len(warnings)} warning(s)" if warnings else ""))
    return 0
