"""The access decision: may this identity do this action on this repository.

Mirrors the seed's Apache ``<Limit>`` blocks, but as an allow-list: an action
nobody granted is refused, and an unknown action does not exist here at all.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from auth.globs import compile_globs, first_match


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
