"""Per-repository rules: glob semantics, first match wins, fallback to defaults, token grants.

Reading them from ``proxy.yml`` and the ``check-config`` table are in
``tests/proxy/config/test_access_section.py``.
"""

from __future__ import annotations

import pytest

from auth.access import Access, Action, Identity, RepositoryRule, Rule
from auth.globs import GlobError, compile_globs, first_match, glob_to_regex
from auth.scopes import grant_scopes, parse_scopes

TEAM_A = Identity("ann", frozenset({"team-a"}))
PUSHER = Identity("mark", frozenset({"pusher"}))
READER = Identity("reader")

ACCESS = Access(
    delete=Rule.of_groups(["admins"]),
    repositories=(
        RepositoryRule("team-a/**", push=Rule.of_groups(["team-a"])),
        RepositoryRule("private/**", pull=Rule(users=True)),
        RepositoryRule("team-a/secret", pull=Rule()),  # shadowed by team-a/**: never used
    ),
)


@pytest.mark.parametrize(("pattern", "name", "matches"), [
    ("team-a/*", "team-a/x", True),
    ("team-a/*", "team-a/x/y", False),
    ("team-a/**", "team-a/x", True),
    ("team-a/**", "team-a/x/y/z", True),
    ("team-a/**", "team-a", True),  # a namespace rule governs the repository named like it
    ("team-a/**", "team-ab", False),
    ("team-a/**", "team-", False),
    ("a/b/**", "a/b", True),
    ("a/b/**", "a", False),
    ("team-a/**", "team-ab/x", False),
    ("**/app", "app", True),
    ("**/app", "a/b/app", True),
    ("**/app", "a/b/apps", False),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "ab", False),
    ("lib?", "lib1", True),
    ("lib?", "lib/", False),
    ("*", "top", True),
    ("*", "a/b", False),
    ("**", "a/b/c", True),
    ("x.y", "xzy", False),  # the dot is literal
    ("*-dev/**", "web-dev/api", True),
])
def test_glob(pattern: str, name: str, matches: bool) -> None:
    assert (first_match(compile_globs([pattern]), name) == 0) is matches


@pytest.mark.parametrize("pattern", ["", "/a", "a/", "a//b", "A/b", "a/**b", "***", "a b", "a:b"])
def test_bad_globs_are_refused(pattern: str) -> None:
    with pytest.raises(GlobError):
        glob_to_regex(pattern)


def test_first_match_wins_and_unset_actions_fall_back_to_the_default() -> None:
    assert ACCESS.rule(Action.PUSH, "team-a/x") == Rule.of_groups(["team-a"])
    assert ACCESS.rule(Action.PULL, "team-a/secret") == Rule(anyone=True)  # team-a/** matched first
    assert ACCESS.rule(Action.DELETE, "team-a/x") == Rule.of_groups(["admins"])
    assert ACCESS.rule(Action.PUSH, "team-b/x") == Rule.of_groups(["pusher"])
    assert ACCESS.rule(Action.PULL, "private/db") == Rule(users=True)
    assert ACCESS.rule(Action.PULL, None) == ACCESS.catalog


def test_decisions_per_repository() -> None:
    assert ACCESS.allowed(TEAM_A, Action.PUSH, "team-a/x", "")
    assert not ACCESS.allowed(TEAM_A, Action.PUSH, "team-b/x", "")
    assert not ACCESS.allowed(PUSHER, Action.PUSH, "team-a/x", "")
    assert ACCESS.allowed(PUSHER, Action.PUSH, "team-b/x", "")
    assert not ACCESS.allowed(None, Action.PULL, "private/db", "")
    assert ACCESS.allowed(READER, Action.PULL, "private/db", "")


def test_a_namespace_rule_governs_the_repository_named_like_the_namespace() -> None:
    """``team-a/**`` used to miss ``team-a`` itself: the default rule then let any pusher write there."""
    assert ACCESS.rule(Action.PUSH, "team-a") == Rule.of_groups(["team-a"])
    assert ACCESS.allowed(TEAM_A, Action.PUSH, "team-a", "")
    assert not ACCESS.allowed(PUSHER, Action.PUSH, "team-a", "")
    assert not ACCESS.allowed(None, Action.PULL, "private", "")
    assert ACCESS.rule(Action.PUSH, "team-ab") == Rule.of_groups(["pusher"])  # a longer name is not in it


def test_token_grants_use_the_same_rules() -> None:
    scopes = parse_scopes(["repository:team-a/x:pull,push repository:team-b/x:pull,push"])
    grants = {g.name: g.actions for g in grant_scopes(ACCESS, TEAM_A, scopes, "")}
    assert grants == {"team-a/x": ("pull", "push"), "team-b/x": ("pull",)}
    anon = {g.name: g.actions for g in grant_scopes(ACCESS, None, parse_scopes(["repository:private/db:pull"]), "")}
    assert anon == {"private/db": ()}
