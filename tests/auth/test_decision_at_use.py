"""The policy in force decides at use: networks (403, never a challenge) and rules tightened after a token.

A token records what was allowed when it was issued; ``judge_claims``
checks ``access`` again, so a reload that tightens a rule, or a token
carried outside the allowed networks, opens nothing.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

import pytest

from auth.access import Access, Identity, RepositoryRule, Rule
from auth.decision import Origin, Policy
from auth.errors import ProxyError
from auth.routes import Route, Router
from auth.tokens import Claims, Grant

ROUTER = Router(token_path="/token")
DIGEST = "sha256:" + "c" * 64
TEN = (ipaddress.ip_network("10.0.0.0/8"),)
INSIDE = Origin("https", "registry.example:5043", "10.1.2.3")
INSIDE_MAPPED = Origin("https", "registry.example:5043", "::ffff:10.1.2.3")
OUTSIDE = Origin("https", "registry.example:5043", "192.0.2.7")
UNKNOWN = Origin("https", "registry.example:5043", "")
PUSHER = Identity("mark", frozenset({"pusher"}))
READER = Identity("reader")
INTERNAL = Access(pull=Rule(anyone=True, networks=TEN), push=Rule(groups=frozenset({"pusher"}), networks=TEN),
                  catalog=Rule(anyone=True, networks=TEN))


def policy(access: Access, mode: str = "bearer") -> Policy:
    return Policy(access=access, mode=mode, basic_realm="r", service="registry.example", token_path="/token")


def route(method: str, path: str) -> Route:
    return ROUTER.parse(method, path)


def refusal(call: Callable[..., object], *args: object) -> ProxyError:
    with pytest.raises(ProxyError) as info:
        call(*args)
    return info.value


def assert_network_refusal(err: ProxyError, address: str) -> None:
    assert (err.status, err.code) == (403, "DENIED")
    assert "WWW-Authenticate" not in err.headers  # logging in cannot help: no challenge
    assert f"not accepted from {address}" in err.message and "only from 10.0.0.0/8" in err.message


# ------------------------------------------------------------------ networks


def test_anonymous_ok_and_may_pull_follow_the_network() -> None:
    p = policy(INTERNAL)
    read = route("GET", "/v2/a/manifests/x")
    assert p.anonymous_ok(read, INSIDE) and p.anonymous_ok(read, INSIDE_MAPPED)
    assert not p.anonymous_ok(read, OUTSIDE) and not p.anonymous_ok(read, UNKNOWN)
    assert p.may_pull(None, "a", INSIDE) and not p.may_pull(None, "a", OUTSIDE)
    assert p.may_pull(READER, "a", INSIDE) and not p.may_pull(PUSHER, "a", OUTSIDE)
    restricted = policy(Access(repositories=(RepositoryRule("secret/**", pull=Rule(users=True)),)))
    assert restricted.may_pull(READER, "secret/x", OUTSIDE) and not restricted.may_pull(None, "secret/x", OUTSIDE)
    assert restricted.may_pull(None, "public/x", OUTSIDE)


@pytest.mark.parametrize("mode", ["bearer", "basic"])
@pytest.mark.parametrize(("method", "path"), [("GET", "/v2/a/manifests/x"), ("PUT", "/v2/a/manifests/x"),
                                              ("GET", "/v2/_catalog")])
def test_no_credentials_from_outside_is_403_not_a_challenge(mode: str, method: str, path: str) -> None:
    p = policy(INTERNAL, mode)
    assert_network_refusal(p.no_credentials(route(method, path), OUTSIDE), "192.0.2.7")
    unknown = p.no_credentials(route(method, path), UNKNOWN)
    assert unknown.status == 403 and "not accepted from an unknown address" in unknown.message


def test_no_credentials_from_inside_is_still_the_challenge() -> None:
    err = policy(INTERNAL).no_credentials(route("PUT", "/v2/a/manifests/x"), INSIDE)
    assert (err.status, err.code) == (401, "UNAUTHORIZED")
    assert err.headers["WWW-Authenticate"].endswith(',scope="repository:a:pull,push"')


def test_the_ping_always_challenges_wherever_the_client_is() -> None:
    err = policy(INTERNAL).no_credentials(route("GET", "/v2/"), OUTSIDE)
    assert err.status == 401 and "WWW-Authenticate" in err.headers


def test_a_mount_from_a_source_closed_to_the_clients_network_is_403() -> None:
    access = Access(push=Rule(anyone=True),
                    repositories=(RepositoryRule("secret/**", pull=Rule(anyone=True, networks=TEN)),))
    mount = route("POST", f"/v2/team/app/blobs/uploads/?mount={DIGEST}&from=secret/base")
    err = policy(access).no_credentials(mount, OUTSIDE)
    assert_network_refusal(err, "192.0.2.7")
    assert "pull on secret/base" in err.message
    assert policy(access).anonymous_ok(mount, INSIDE)


def test_judge_identity_refuses_the_right_user_from_the_wrong_network() -> None:
    p = policy(INTERNAL, "basic")
    put = route("PUT", "/v2/a/manifests/x")
    p.judge_identity(put, PUSHER, INSIDE)  # no exception
    p.judge_identity(put, PUSHER, INSIDE_MAPPED)
    assert_network_refusal(refusal(p.judge_identity, put, PUSHER, OUTSIDE), "192.0.2.7")
    assert_network_refusal(refusal(p.judge_identity, put, READER, OUTSIDE), "192.0.2.7")  # network said first
    denied = refusal(p.judge_identity, put, READER, INSIDE)
    assert (denied.status, denied.code) == (403, "DENIED") and "group pusher" in denied.message
    p.judge_identity(route("GET", "/v2/"), PUSHER, OUTSIDE)  # the ping checks the login only


def test_judge_claims_refuses_a_token_carried_outside_the_networks() -> None:
    p = policy(INTERNAL)
    put = route("PUT", "/v2/a/manifests/x")
    claims = Claims("mark", (Grant("repository", "a", ("pull", "push")),), "fp")
    p.judge_claims(put, claims, PUSHER, INSIDE)  # no exception
    assert_network_refusal(refusal(p.judge_claims, put, claims, PUSHER, OUTSIDE), "192.0.2.7")
    anonymous = Claims("", (Grant("repository", "a", ("pull",)),), "")
    p.judge_claims(route("GET", "/v2/a/manifests/x"), anonymous, None, INSIDE)
    assert_network_refusal(refusal(p.judge_claims, route("GET", "/v2/a/manifests/x"), anonymous, None, OUTSIDE),
                           "192.0.2.7")
    catalog = Claims("mark", (Grant("registry", "catalog", ("*",)),), "fp")
    assert_network_refusal(refusal(p.judge_claims, route("GET", "/v2/_catalog"), catalog, PUSHER, OUTSIDE),
                           "192.0.2.7")


# ------------------------------------------------------------------ the policy tightened after the token


def test_a_push_token_is_refused_after_push_was_narrowed_to_another_group() -> None:
    put = route("PUT", "/v2/a/manifests/x")
    token = Claims("mark", (Grant("repository", "a", ("pull", "push")),), "fp")  # issued under the default
    policy(Access()).judge_claims(put, token, PUSHER, INSIDE)  # allowed before the reload
    err = refusal(policy(Access(push=Rule.of_groups(["admins"]))).judge_claims, put, token, PUSHER, INSIDE)
    assert (err.status, err.code) == (401, "DENIED")
    assert err.headers["WWW-Authenticate"].endswith(',scope="repository:a:pull,push",error="insufficient_scope"')
    assert "user 'mark' is not a member of group admins" in err.message


def test_a_token_is_refused_after_a_repository_rule_closed_it() -> None:
    pull = route("GET", "/v2/team/app/manifests/x")
    token = Claims("reader", (Grant("repository", "team/app", ("pull",)),), "fp")
    policy(Access()).judge_claims(pull, token, READER, INSIDE)
    closed = Access(repositories=(RepositoryRule("team/**", pull=Rule.of_groups(["team"])),))
    err = refusal(policy(closed).judge_claims, pull, token, READER, INSIDE)
    assert err.status == 401 and "group team" in err.message
    assert policy(closed).judge_claims(pull, token, Identity("reader", frozenset({"team"})), INSIDE) is None


def test_an_anonymous_token_is_refused_after_pulls_need_a_login() -> None:
    pull = route("GET", "/v2/a/manifests/x")
    token = Claims("", (Grant("repository", "a", ("pull",)),), "")
    policy(Access()).judge_claims(pull, token, None, INSIDE)
    err = refusal(policy(Access(pull=Rule(users=True))).judge_claims, pull, token, None, INSIDE)
    assert (err.status, err.code) == (401, "UNAUTHORIZED")
    assert 'error="insufficient_scope"' in err.headers["WWW-Authenticate"]


def test_a_catalog_token_is_refused_after_the_catalog_was_restricted() -> None:
    catalog = route("GET", "/v2/_catalog")
    token = Claims("mark", (Grant("registry", "catalog", ("*",)),), "fp")
    policy(Access()).judge_claims(catalog, token, PUSHER, INSIDE)
    err = refusal(policy(Access(catalog=Rule.of_groups(["ops"]))).judge_claims, catalog, token, PUSHER, INSIDE)
    assert err.status == 401 and "group ops" in err.message
    assert err.headers["WWW-Authenticate"].endswith(',scope="registry:catalog:*",error="insufficient_scope"')


def test_a_token_is_refused_after_its_rule_gained_networks() -> None:
    put = route("PUT", "/v2/a/manifests/x")
    token = Claims("mark", (Grant("repository", "a", ("pull", "push")),), "fp")
    policy(Access()).judge_claims(put, token, PUSHER, OUTSIDE)
    assert_network_refusal(refusal(policy(INTERNAL).judge_claims, put, token, PUSHER, OUTSIDE), "192.0.2.7")


def test_a_mount_token_is_refused_when_the_source_was_closed_since() -> None:
    mount = route("POST", f"/v2/team/app/blobs/uploads/?mount={DIGEST}&from=secret/base")
    token = Claims("mark", (Grant("repository", "team/app", ("pull", "push")),
                            Grant("repository", "secret/base", ("pull",))), "fp")
    policy(Access()).judge_claims(mount, token, PUSHER, INSIDE)
    closed = Access(repositories=(RepositoryRule("secret/**", pull=Rule.of_groups(["readers"])),))
    err = refusal(policy(closed).judge_claims, mount, token, PUSHER, INSIDE)
    assert err.status == 401 and "pull on secret/base" in err.message
    assert 'scope="repository:team/app:pull,push repository:secret/base:pull"' in err.headers["WWW-Authenticate"]
