"""The access decision: may this identity do this action on this repository.

Mirrors the seed's Apache ``<Limit>`` blocks, but as an allow-list: an action
nobody granted is refused, and an unknown action does not exist here at all.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field


class Action(enum.StrEnum):
    """What a request does to a repository; the unit of every grant."""

    PULL = "pull"
    PUSH = "push"
    DELETE = "delete"


@dataclass(frozen=True)
class Identity:
    """An authenticated user and the groups the group file gives them."""

    name: str
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Rule:
    """Who may do one action: ``anyone``, any authenticated user, or members of groups."""

    anyone: bool = False
    users: bool = False
    groups: frozenset[str] = frozenset()

    @classmethod
    def of_groups(cls, groups: Iterable[str]) -> Rule:
        return cls(groups=frozenset(groups))

    def allows(self, who: Identity | None) -> bool:
        if self.anyone:
            return True
        if who is None:
            return False
        return self.users or bool(self.groups & who.groups)

    def describe(self) -> str:
        if self.anyone:
            return "anyone"
        if self.users:
            return "users"
        return "[" + ", ".join(sorted(self.groups)) + "]" if self.groups else "nobody"


NOBODY = Rule()


@dataclass(frozen=True)
class Access:
    """The ``access:`` table of the config: one rule per action."""

    pull: Rule = field(default_factory=lambda: Rule(anyone=True))
    push: Rule = field(default_factory=lambda: Rule.of_groups(["pusher"]))
    delete: Rule = field(default_factory=lambda: Rule.of_groups(["pusher"]))
    catalog: Rule = field(default_factory=lambda: Rule(anyone=True))

    def rule(self, action: Action, repository: str | None) -> Rule:
        """The rule for ``action``; ``repository`` is None for the catalog listing."""
        if repository is None:
            return self.catalog if action is Action.PULL else NOBODY
        return {Action.PULL: self.pull, Action.PUSH: self.push, Action.DELETE: self.delete}[action]

    def allowed(self, who: Identity | None, action: Action, repository: str | None) -> bool:
        return self.rule(action, repository).allows(who)

    def grant(self, who: Identity | None, repository: str, wanted: Iterable[Action]) -> frozenset[Action]:
        """Narrow ``wanted`` to what ``who`` may do: the token spec's silent narrowing."""
        return frozenset(a for a in wanted if self.allowed(who, a, repository))


class Verdict(enum.Enum):
    ALLOW = "allow"
    UNAUTHENTICATED = "unauthenticated"  # 401: credentials would help
    FORBIDDEN = "forbidden"  # 403: a known user, but not allowed


def decide(access: Access, who: Identity | None, action: Action, repository: str | None) -> Verdict:
    """Apply the table; the status code follows from whether logging in could help."""
    if access.allowed(who, action, repository):
        return Verdict.ALLOW
    return Verdict.UNAUTHENTICATED if who is None else Verdict.FORBIDDEN
