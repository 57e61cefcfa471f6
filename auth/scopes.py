"""Token scopes (``repository:NAME:pull,push``) and what a token grants for them.

Parsing follows the distribution token spec; granting narrows the requested
actions to what ``access`` allows the identity, silently, as the spec says:
the registry (here, the gate) then refuses what was not granted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from auth.access import Access, Action, Identity
from auth.names import valid_name
from auth.tokens import Grant

__all__ = ["CATALOG", "Scope", "ScopeError", "grant_scopes", "parse_scope", "parse_scopes", "repository_actions"]

CATALOG = "catalog"


class ScopeError(ValueError):
    """A scope we cannot parse: the token endpoint answers 400 with this text."""


@dataclass(frozen=True)
class Scope:
    type: str  # "repository" or "registry"
    name: str
    actions: frozenset[str]

    def to_string(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"


def parse_scope(text: str) -> Scope:
    kind, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2 or not name:
        raise ScopeError(f"scope {text!r}: expected TYPE:NAME:ACTIONS, e.g. repository:team/app:pull,push")
    if "(" in kind:  # resource class, e.g. repository(plugin); not used by registries we front
        kind = kind.split("(", 1)[0]
    wanted = frozenset(a for a in actions.split(",") if a)
    if kind == "repository":
        if not valid_name(name):
            raise ScopeError(f"scope {text!r}: {name!r} is not a valid repository name")
        return Scope(kind, name, wanted)
    if kind == "registry":
        if name != CATALOG:
            raise ScopeError(f"scope {text!r}: only registry:catalog:* is supported")
        return Scope(kind, name, wanted)
    raise ScopeError(f"scope {text!r}: unknown resource type {kind!r}")


def parse_scopes(texts: Iterable[str]) -> list[Scope]:
    """Docker sends scopes as repeated parameters; some clients join them with spaces."""
    return [parse_scope(part) for text in texts for part in text.split()]


def repository_actions(actions: frozenset[str]) -> list[Action]:
    """The actions of a repository scope we know; unknown ones are narrowed away silently."""
    known = {a.value: a for a in Action}
    if "*" in actions:
        return list(Action)
    return [known[a] for a in sorted(actions) if a in known]


def grant_scopes(access: Access, who: Identity | None, scopes: Iterable[Scope], address: str) -> list[Grant]:
    """The grants of a token: each requested scope narrowed to what ``who`` may do from ``address``.

    Merged per resource. The gate checks ``access`` again when the token is
    used, so a grant never outlives the rule (or the network) that allowed it.
    """
    merged: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        if scope.type == "registry":
            allowed = {"*"} if access.allowed(who, Action.PULL, None, address) else set()
        else:
            wanted = repository_actions(scope.actions)
            allowed = {a.value for a in access.grant(who, scope.name, wanted, address)}
        merged.setdefault((scope.type, scope.name), set()).update(allowed)
    return [Grant(t, n, tuple(sorted(a))) for (t, n), a in merged.items()]
