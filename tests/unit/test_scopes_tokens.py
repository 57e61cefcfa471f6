"""Token scopes, the grant narrowing table, and the JWTs themselves."""

from __future__ import annotations

import time

import jwt
import pytest

from auth.grants import grant_scopes
from auth.policy import Access, Action, Identity, Rule
from auth.scopes import Scope, ScopeError, parse_scope, parse_scopes, repository_actions
from auth.tokens import LEEWAY, Claims, Grant, TokenAuthority, TokenError, new_key

KEY = b"k" * 32
SERVICE = "registry.example"
ISSUER = "registry-auth-proxy"

ANON = None
READER = Identity("reader")
PUSHER = Identity("mark", frozenset({"pusher"}))
ADMIN = Identity("root", frozenset({"admins"}))


class FakeClock:
    def __init__(self, now: float | None = None) -> None:
        self.now = time.time() if now is None else now

    def __call__(self) -> float:
        return self.now


def authority(key: bytes = KEY, service: str = SERVICE, issuer: str = ISSUER, ttl: int = 300,
              clock: FakeClock | None = None) -> TokenAuthority:
    return TokenAuthority(key, service, issuer, ttl, clock=clock or FakeClock())


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


def granted(access: Access, who: Identity | None, *texts: str) -> dict[tuple[str, str], tuple[str, ...]]:
    return {(g.type, g.name): g.actions for g in grant_scopes(access, who, parse_scopes(texts))}


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


# ------------------------------------------------------------------ tokens


def test_round_trip() -> None:
    tokens = authority()
    grants = [Grant("repository", "team/app", ("pull", "push")), Grant("registry", "catalog", ("*",))]
    issued = tokens.issue("mark", grants, fingerprint="abc123")
    claims = tokens.verify(issued.token)
    assert claims == Claims("mark", tuple(grants), "abc123")
    assert claims.allows("repository", "team/app", "push")
    assert claims.allows("registry", "catalog", "*")
    assert not claims.allows("repository", "team/app", "delete")
    assert not claims.allows("repository", "other", "pull")
    assert not claims.allows("registry", "team/app", "pull")


def test_token_shape_follows_the_spec() -> None:
    clock = FakeClock()
    tokens = authority(ttl=120, clock=clock)
    issued = tokens.issue("", [Grant("repository", "a", ("pull",))])
    payload = jwt.decode(issued.token, KEY, algorithms=["HS256"], audience=SERVICE)
    assert payload["iss"] == ISSUER and payload["sub"] == "" and payload["aud"] == SERVICE
    assert payload["exp"] == int(clock.now) + 120 and payload["iat"] == int(clock.now)
    assert payload["access"] == [{"type": "repository", "name": "a", "actions": ["pull"]}]
    assert "fp" not in payload
    assert jwt.get_unverified_header(issued.token)["alg"] == "HS256"
    body = issued.as_response()
    assert body["token"] == body["access_token"] == issued.token
    assert body["expires_in"] == 120
    assert body["issued_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(clock.now)))
    assert tokens.verify(issued.token).subject == ""


def test_each_token_is_unique() -> None:
    tokens = authority()
    assert tokens.issue("mark", []).token != tokens.issue("mark", []).token


def test_expired_token_refused() -> None:
    past = FakeClock(time.time() - 300 - LEEWAY - 60)
    old = authority(ttl=300, clock=past).issue("mark", []).token
    with pytest.raises(TokenError, match="expired"):
        authority().verify(old)


def test_expiry_follows_the_authority_clock() -> None:
    """The clock given to the authority must also be the one expiry is judged by."""
    clock = FakeClock()
    tokens = authority(ttl=300, clock=clock)
    token = tokens.issue("mark", []).token
    clock.now += 100
    assert tokens.verify(token).subject == "mark"
    clock.now += 300 + LEEWAY + 60
    with pytest.raises(TokenError, match="expired"):
        tokens.verify(token)


def test_token_from_the_future_refused() -> None:
    future = FakeClock(time.time() + 3600)
    token = authority(clock=future).issue("mark", []).token
    with pytest.raises(TokenError):
        authority().verify(token)


def test_wrong_key_audience_or_issuer_refused() -> None:
    token = authority().issue("mark", []).token
    for other in (authority(key=b"x" * 32), authority(service="other.example"), authority(issuer="someone-else")):
        with pytest.raises(TokenError):
            other.verify(token)


def base_claims(**drop_or_set: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {"iss": ISSUER, "sub": "mark", "aud": SERVICE, "exp": now + 300,
                                 "nbf": now - 1, "iat": now,
                                 "access": [{"type": "repository", "name": "a", "actions": ["push"]}]}
    for key, value in drop_or_set.items():
        if value is None:
            claims.pop(key)
        else:
            claims[key] = value
    return claims


def test_hand_made_token_with_the_key_is_accepted() -> None:
    """Control for the refusals below: the same construction, nothing wrong with it."""
    token = jwt.encode(base_claims(), KEY, algorithm="HS256")
    assert authority().verify(token).allows("repository", "a", "push")


def test_alg_none_refused() -> None:
    token = jwt.encode(base_claims(), None, algorithm="none")
    assert jwt.get_unverified_header(token)["alg"] == "none"
    with pytest.raises(TokenError):
        authority().verify(token)


@pytest.mark.parametrize("alg", ["HS512", "HS384"])
def test_other_hmac_algorithm_with_the_same_key_refused(alg: str) -> None:
    key = b"k" * 64  # long enough for HS512, so PyJWT does not warn
    assert authority(key=key).verify(jwt.encode(base_claims(), key, algorithm="HS256")).subject == "mark"
    token = jwt.encode(base_claims(), key, algorithm=alg)
    with pytest.raises(TokenError, match="algorithm"):
        authority(key=key).verify(token)


@pytest.mark.parametrize("claim", ["exp", "iat", "nbf", "aud", "iss", "sub"])
def test_missing_claim_refused(claim: str) -> None:
    token = jwt.encode(base_claims(**{claim: None}), KEY, algorithm="HS256")
    with pytest.raises(TokenError):
        authority().verify(token)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "Bearer x", "e30.e30.", "....."])
def test_garbage_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(TokenError) as info:
        authority().verify(token)
    if len(token) > 3:
        assert token not in str(info.value)


def test_tampered_payload_refused() -> None:
    token = authority().issue("reader", [Grant("repository", "a", ("pull",))]).token
    header, payload, sig = token.split(".")
    forged = jwt.encode(base_claims(sub="reader"), b"y" * 32, algorithm="HS256").split(".")[1]
    with pytest.raises(TokenError):
        authority().verify(f"{header}.{forged}.{sig}")
    assert payload != forged


@pytest.mark.parametrize(
    "access",
    ["nope", {"type": "repository"}, ["x", 3, {"type": "repository", "name": "a", "actions": "push"}]],
)
def test_malformed_access_claim_grants_nothing(access: object) -> None:
    token = jwt.encode(base_claims(access=access), KEY, algorithm="HS256")
    claims = authority().verify(token)
    assert claims.grants == ()
    assert not claims.allows("repository", "a", "push")


def test_key_must_be_long_enough() -> None:
    with pytest.raises(ValueError):
        TokenAuthority(b"short", SERVICE, ISSUER, 300)
    assert len(new_key()) == 32
    assert new_key() != new_key()
