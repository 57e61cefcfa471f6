"""What a token grants: the requested scopes narrowed to what the policy allows.

As the token spec says, a scope the identity may not have is narrowed
silently rather than refused; the registry then refuses the write itself.
"""

from __future__ import annotations

from collections.abc import Iterable

from auth.policy import Access, Action, Identity
from auth.scopes import Scope, repository_actions
from auth.tokens import Grant


def grant_scopes(access: Access, who: Identity | None, scopes: Iterable[Scope]) -> list[Grant]:
    merged: dict[tuple[str, str], set[str]] = {}
    for scope in scopes:
        if scope.type == "registry":
            allowed = {"*"} if access.allowed(who, Action.PULL, None) else set()
        else:
            wanted = repository_actions(scope.actions)
            allowed = {a.value for a in access.grant(who, scope.name, wanted)}
        merged.setdefault((scope.type, scope.name), set()).update(allowed)
    return [Grant(t, n, tuple(sorted(a))) for (t, n), a in merged.items()]
