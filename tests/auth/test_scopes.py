"""Token scopes and the grant narrowing table: what a token may carry."""

from __future__ import annotations

import ipaddress

import pytest

from auth.access import Access, Action, Identity, RepositoryRule, Rule
from auth.scopes import Scope, ScopeError, grant_scopes, parse_scope, parse_scopes, repository_actions

ANON = None
READER = Identity("reader")
PUSHER = Identity("mark", frozenset({"pusher"}))
ADMIN = Identity("root", frozenset({"admins"}))


# ------------------------------------------------------------------ scopes


@pytest.mark.parametrize(
    ("text", "scope"),
    [
        ("repository:team/app:pull,push", Scope("repository", "team/app", frozenset({"pull", "push"}))),
        ("repository:app:pull", Scope("repository", "app", frozenset({"pull"}))),
        ("repository:a/b/c:*", Scope("repository", "a/b/c", frozenset({"*"}))),
        ("repository:app:", Scope("repository", "app", frozenset())),
        ("repository:app:pull,,push,", Scope("repository", "app", frozenset({"pull", "push"}))),
        ("repository(plugin):app:pull", Scope("repository", "app", frozenset({"pull"}))),
        ("registry:catalog:*", Scope("registry", "catalog", frozenset({"*"}))),
    ],
)
def test_parse_scope(text: str, scope: Scope) -> None:
    assert parse_scope(text) == scope


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "expected TYPE:NAME:ACTIONS"),
        ("pull", "expected TYPE:NAME:ACTIONS"),
        ("repository:app", "expected TYPE:NAME:ACTIONS"),
        ("repository::pull", "expected TYPE:NAME:ACTIONS"),
        ("repository:App:pull", "not a valid repository name"),
        ("repository:../etc:pull", "not a valid repository name"),
        ("repository:localhost:5000/app:pull", "not a valid repository name"),
        ("repository:" + "a" * 256 + ":pull", "not a valid repository name"),
        ("registry:other:*", "only registry:catalog:* is supported"),
        ("image:app:pull", "unknown resource type 'image'"),
        (":app:pull", "unknown resource type ''"),
    ],
)
def test_bad_scope_raises_scope_error_with_clear_message(text: str, says: str) -> None:
    with pytest.raises(ScopeError) as info:
        parse_scope(text)
    assert says in str(info.value)
    assert repr(text) in str(info.value)  # names the scope it refused


def test_scope_error_is_a_value_error() -> None:
    assert issubclass(ScopeError, ValueError)


def test_multiple_scopes_repeated_or_space_joined() -> None:
    scopes = parse_scopes(["repository:a:pull repository:b:pull,push", "registry:catalog:*", "  "])
    assert [(s.type, s.name) for s in scopes] == [("repository", "a"), ("repository", "b"), ("registry", "catalog")]
    assert parse_scopes([]) == []
    with pytest.raises(ScopeError):
        parse_scopes(["repository:a:pull bogus"])


def test_to_string_round_trips() -> None:
    scope = parse_scope("repository:team/app:push,pull")
    assert scope.to_string() == "repository:team/app:pull,push"
    assert parse_scope(scope.to_string()) == scope


def test_repository_actions() -> None:
    assert repository_actions(frozenset({"*"})) == list(Action)
    assert repository_actions(frozenset({"push", "pull", "bogus", "delete"})) == [
        Action.DELETE, Action.PULL, Action.PUSH]
    assert repository_actions(frozenset({"bogus"})) == []


# ------------------------------------------------------------------ grants


def granted(access: Access, who: Identity | None, *texts: str,
            address: str = "") -> dict[tuple[str, str], tuple[str, ...]]:
    return {(g.type, g.name): g.actions for g in grant_scopes(access, who, parse_scopes(texts), address)}


@pytest.mark.parametrize(
    ("who", "wanted", "actions"),
    [
        (ANON, "pull,push", ("pull",)),
        (ANON, "*", ("pull",)),
        (READER, "pull,push", ("pull",)),
        (READER, "push", ()),
        (READER, "delete", ()),
        (PUSHER, "pull,push", ("pull", "push")),
        (PUSHER, "push", ("push",)),
        (PUSHER, "*", ("delete", "pull", "push")),
        (PUSHER, "delete", ("delete",)),
        (PUSHER, "pull,bogus", ("pull",)),
        (ADMIN, "pull,push,delete", ("pull",)),
    ],
)
def test_grant_narrowing_default_access(who: Identity | None, wanted: str, actions: tuple[str, ...]) -> None:
    assert granted(Access(), who, f"repository:team/app:{wanted}") == {("repository", "team/app"): actions}


def test_delete_follows_access_delete() -> None:
    access = Access(delete=Rule.of_groups(["admins"]))
    assert granted(access, PUSHER, "repository:a:*") == {("repository", "a"): ("pull", "push")}
    assert granted(access, ADMIN, "repository:a:*") == {("repository", "a"): ("delete", "pull")}
    assert granted(Access(delete=Rule()), PUSHER, "repository:a:delete") == {("repository", "a"): ()}


def test_catalog_grant() -> None:
    assert granted(Access(), ANON, "registry:catalog:*") == {("registry", "catalog"): ("*",)}
    restricted = Access(catalog=Rule.of_groups(["admins"]))
    assert granted(restricted, PUSHER, "registry:catalog:*") == {("registry", "catalog"): ()}
    assert granted(restricted, ADMIN, "registry:catalog:*") == {("registry", "catalog"): ("*",)}


def test_scopes_of_one_repository_are_merged_and_others_kept_apart() -> None:
    result = granted(Access(), PUSHER, "repository:a:pull", "repository:a:push", "repository:b:pull")
    assert result == {("repository", "a"): ("pull", "push"), ("repository", "b"): ("pull",)}


def test_pull_restricted_to_users() -> None:
    access = Access(pull=Rule(users=True))
    assert granted(access, ANON, "repository:a:pull,push") == {("repository", "a"): ()}
    assert granted(access, READER, "repository:a:pull,push") == {("repository", "a"): ("pull",)}


def test_grants_are_narrowed_by_the_clients_network() -> None:
    ten = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("2001:db8::/32"))
    access = Access(push=Rule(groups=frozenset({"pusher"}), networks=ten), catalog=Rule(anyone=True, networks=ten),
                    repositories=(RepositoryRule("internal/**", pull=Rule(anyone=True, networks=ten)),))
    texts = ("repository:a:pull,push", "repository:internal/x:pull", "registry:catalog:*")
    inside = {("repository", "a"): ("pull", "push"), ("repository", "internal/x"): ("pull",),
              ("registry", "catalog"): ("*",)}
    outside = {("repository", "a"): ("pull",), ("repository", "internal/x"): (), ("registry", "catalog"): ()}
    for address in ("10.1.2.3", "::ffff:10.1.2.3", "2001:db8::9"):
        assert granted(access, PUSHER, *texts, address=address) == inside
    for address in ("192.0.2.1", "", "not-an-ip", "2001:db9::1"):
        assert granted(access, PUSHER, *texts, address=address) == outside
