"""The access decision: may this identity do this action on this repository.

Mirrors the seed's Apache ``<Limit>`` blocks, but as an allow-list: an action
nobody granted is refused, and an unknown action does not exist here at all.
"""

from __future__ import annotations

import enum
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

from auth.globs import compile_globs, first_match

if TYPE_CHECKING:
    from auth.userfiles.robots import RobotScopes


class Action(enum.StrEnum):
    """What a request does to a repository; the unit of every grant."""

    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"


@dataclass(frozen=True)
class Identity:
    """An authenticated user and the groups the group file gives them.

    ``scopes`` is set for robots (``robot$NAME``) only: an allow-list checked
    on top of ``access``, so a robot never gets more than its scopes (and never
    more than ``access`` gives a ``users``-level identity with its groups).
    """

    name: str
    groups: frozenset[str] = frozenset()
    scopes: RobotScopes | None = None

    def in_scope(self, action: Action, repository: str | None) -> bool:
        return self.scopes is None or self.scopes.allows(action, repository)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=4096)
def client_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The client's address as an IP (IPv4-mapped IPv6 taken as IPv4); None when unknown or not an IP."""
    try:
        address = ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class Rule:
    """Who may do one action (``anyone``, any authenticated user, or members of groups), and from where.

    ``networks`` empty means from anywhere; otherwise the client address (the
    TCP peer, or what a trusted PROXY header or front proxy established) must
    be in one of them: Apache's ``Require ip`` beside ``Require group``.
    """

    anyone: bool = False
    users: bool = False
    groups: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def of_groups(cls, groups: Iterable[str]) -> Rule:
        return cls(groups=frozenset(groups))

    def admits(self, who: Identity | None) -> bool:
        """The identity half: wherever the request comes from."""
        if self.anyone:
            return True
        if who is None:
            return False
        return self.users or bool(self.groups & who.groups)

    def reachable_from(self, address: str) -> bool:
        """The network half; an unknown address is outside every network."""
        if not self.networks:
            return True
        ip = client_address(address)
        return ip is not None and any(ip in net for net in self.networks if ip.version == net.version)

    def allows(self, who: Identity | None, address: str) -> bool:
        return self.reachable_from(address) and self.admits(who)

    def describe(self) -> str:
        if self.anyone:
            who = "anyone"
        elif self.users:
            who = "users"
        else:
            who = "[" + ", ".join(sorted(self.groups)) + "]" if self.groups else "nobody"
        return who + self.describe_networks()

    def describe_networks(self) -> str:
        return " from " + ",".join(str(n) for n in self.networks) if self.networks else ""

    def covers(self, other: Rule) -> bool:
        """Whoever ``other`` admits, this admits too (ignoring networks): check-config's sanity check."""
        if self.anyone:
            return True
        if other.anyone:
            return False
        if self.users:
            return True
        return not other.users and other.groups <= self.groups


NOBODY = Rule()


@dataclass(frozen=True)
class RepositoryRule:
    """One ``access.repositories`` entry: a glob and the actions it overrides (None: use the default)."""

    match: str
    pull: Rule | None = None
    push: Rule | None = None
    delete: Rule | None = None

    def for_action(self, action: Action) -> Rule | None:
        return {Action.PULL: self.pull, Action.PUSH: self.push, Action.DELETE: self.delete}[action]


@dataclass(frozen=True)
class Access:
    """The ``access:`` table of the config: default rules, then per-repository overrides.

    ``rule()`` is the single lookup used by the gate (Basic) and by token
    grants alike, so a repository rule can never apply to one and not the other.
    """

    pull: Rule = field(default_factory=lambda: Rule(anyone=True))
    push: Rule = field(default_factory=lambda: Rule.of_groups(["pusher"]))
    delete: Rule = field(default_factory=lambda: Rule.of_groups(["pusher"]))
    catalog: Rule = field(default_factory=lambda: Rule(anyone=True))
    repositories: tuple[RepositoryRule, ...] = ()
    _compiled: re.Pattern[str] | None = field(init=False, repr=False, compare=False, default=None)

    def __post_init__(self) -> None:
        # Compiled once here (raises GlobError for a bad pattern): a lookup is one fullmatch.
        object.__setattr__(self, "_compiled", compile_globs([r.match for r in self.repositories]))

    def default(self, action: Action) -> Rule:
        return {Action.PULL: self.pull, Action.PUSH: self.push, Action.DELETE: self.delete}[action]

    def repository_rule(self, repository: str) -> RepositoryRule | None:
        """The first ``repositories`` entry whose glob matches, if any."""
        index = first_match(self._compiled, repository)
        return None if index is None else self.repositories[index]

    def rule(self, action: Action, repository: str | None) -> Rule:
        """The rule for ``action``; ``repository`` is None for the catalog listing.

        First matching entry wins; an action that entry does not set falls back
        to the default, not to a later entry.
        """
        if repository is None:
            return self.catalog if action is Action.PULL else NOBODY
        entry = self.repository_rule(repository) if self._compiled is not None else None
        if entry is not None:
            override = entry.for_action(action)
            if override is not None:
                return override
        return self.default(action)

    def allowed(self, who: Identity | None, action: Action, repository: str | None, address: str) -> bool:
        """``address`` is the client's: there is no default, so no caller can forget the network half.

        A robot needs its scopes too; this is the one check Basic, token
        grants (``grant``) and the catalog filter all go through.
        """
        return self.rule(action, repository).allows(who, address) and (
            who is None or who.in_scope(action, repository))

    def grant(self, who: Identity | None, repository: str, wanted: Iterable[Action],
              address: str) -> frozenset[Action]:
        """Narrow ``wanted`` to what ``who`` may do from ``address``: the token spec's silent narrowing."""
        return frozenset(a for a in wanted if self.allowed(who, a, repository, address))


class Verdict(enum.Enum):
    ALLOW = "allow"
    UNAUTHENTICATED = "unauthenticated"  # 401: credentials would help
    FORBIDDEN = "forbidden"  # 403: a known user, but not allowed
    WRONG_NETWORK = "wrong_network"  # 403: nobody may do this from the client's network


def decide(access: Access, who: Identity | None, action: Action, repository: str | None,
           address: str) -> Verdict:
    """Apply the table; the status code follows from whether logging in could help."""
    rule = access.rule(action, repository)
    if not rule.reachable_from(address):
        return Verdict.WRONG_NETWORK
    if rule.admits(who) and (who is None or who.in_scope(action, repository)):
        return Verdict.ALLOW
    return Verdict.UNAUTHENTICATED if who is None else Verdict.FORBIDDEN
