"""The pure judging half of the gate: challenge text, what needs credentials, and each verdict's answer.

No I/O here: identities and claims are made by hand. The whole gate, with
real files, bcrypt and tokens, is tested in ``tests/proxy/http/test_gate.py``.
"""

from __future__ import annotations

import pytest

from auth.access import Access, Action, Identity, RepositoryRule, Rule
from auth.decision import Origin, Policy
from auth.errors import ProxyError
from auth.routes import Route, Router
from auth.tokens import Claims, Grant

ORIGIN = Origin("https", "registry.example:5043", "192.0.2.7")
REALM = "https://registry.example:5043/token"
DIGEST = "sha256:" + "c" * 64
ROUTER = Router(token_path="/token")
PUSHER = Identity("mark", frozenset({"pusher"}))
READER = Identity("reader", frozenset({"readers"}))


def policy(mode: str = "bearer", access: Access | None = None, token_realm: str | None = None) -> Policy:
    return Policy(access=access or Access(), mode=mode, basic_realm="basic-realm", service="registry.example",
                  token_path="/token", token_realm=token_realm)


def route(method: str, path: str) -> Route:
    return ROUTER.parse(method, path)


# ------------------------------------------------------------------ challenges


def test_basic_challenge_is_the_realm_whatever_the_route() -> None:
    basic = policy("basic")
    for r in (None, route("GET", "/v2/"), route("PUT", "/v2/a/manifests/x")):
        assert basic.challenge(ORIGIN, r) == 'Basic realm="basic-realm"'
    write = route("PUT", "/v2/a/manifests/x")
    assert basic.challenge(ORIGIN, write, insufficient=True) == 'Basic realm="basic-realm"'


def test_bearer_challenge_for_the_ping_has_no_scope() -> None:
    assert policy().challenge(ORIGIN, route("GET", "/v2/")) == f'Bearer realm="{REALM}",service="registry.example"'
    assert policy().challenge(ORIGIN) == f'Bearer realm="{REALM}",service="registry.example"'


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("GET", "/v2/team/app/manifests/latest", "repository:team/app:pull"),
        ("PUT", "/v2/team/app/manifests/latest", "repository:team/app:pull,push"),  # a push needs pull too
        ("POST", "/v2/team/app/blobs/uploads/", "repository:team/app:pull,push"),
        ("DELETE", f"/v2/team/app/blobs/{DIGEST}", "repository:team/app:delete"),
        ("GET", "/v2/_catalog", "registry:catalog:*"),
    ],
)
def test_bearer_challenge_for_a_repository_names_its_scope(method: str, path: str, scope: str) -> None:
    assert policy().challenge(ORIGIN, route(method, path)) == (
        f'Bearer realm="{REALM}",service="registry.example",scope="{scope}"')


def test_bearer_challenge_realm_follows_the_request_or_the_config() -> None:
    plain = Origin("http", "10.0.0.5:5043")
    assert policy().challenge(plain).startswith('Bearer realm="http://10.0.0.5:5043/token",')
    configured = policy(token_realm="https://auth.example/token")
    assert configured.challenge(plain).startswith('Bearer realm="https://auth.example/token",')


MOUNT = f"/v2/team/app/blobs/uploads/?mount={DIGEST}&from=secret/base"
MOUNT_SCOPE = "repository:team/app:pull,push repository:secret/base:pull"


def test_a_mount_challenges_for_both_scopes_in_one_parameter() -> None:
    """Space-separated in one ``scope``, as distribution writes them: exactly what ``needs`` checks."""
    mount = route("POST", MOUNT)
    assert policy().challenge(ORIGIN, mount) == (
        f'Bearer realm="{REALM}",service="registry.example",scope="{MOUNT_SCOPE}"')
    assert policy().challenge(ORIGIN, mount, insufficient=True) == (
        f'Bearer realm="{REALM}",service="registry.example",scope="{MOUNT_SCOPE}",error="insufficient_scope"')
    assert policy("basic").challenge(ORIGIN, mount) == 'Basic realm="basic-realm"'


def test_no_credentials_for_a_mount_names_the_need_that_failed_and_challenges_for_both() -> None:
    closed_source = Access(push=Rule(anyone=True), repositories=(RepositoryRule("secret/**", pull=Rule(users=True)),))
    err = policy(access=closed_source).no_credentials(route("POST", MOUNT), ORIGIN)
    assert (err.status, err.code) == (401, "UNAUTHORIZED")
    assert "pull secret/base" in err.message and "any registered user" in err.message
    assert err.headers["WWW-Authenticate"].endswith(f',scope="{MOUNT_SCOPE}"')
    plain = policy().no_credentials(route("POST", MOUNT), ORIGIN)  # push is what fails by default
    assert "push team/app" in plain.message and "group pusher" in plain.message


def test_insufficient_scope_is_appended_last() -> None:
    value = policy().challenge(ORIGIN, route("PUT", "/v2/a/manifests/x"), insufficient=True)
    assert value == (f'Bearer realm="{REALM}",service="registry.example",scope="repository:a:pull,push",'
                     'error="insufficient_scope"')


# ------------------------------------------------------------------ who needs credentials


def test_anonymous_ok_for_open_reads_never_for_the_ping_or_writes() -> None:
    p = policy()
    assert p.anonymous_ok(route("GET", "/v2/a/manifests/x"), ORIGIN)
    assert p.anonymous_ok(route("GET", "/v2/_catalog"), ORIGIN)
    assert not p.anonymous_ok(route("GET", "/v2/"), ORIGIN)  # the ping is where a login is checked
    assert not p.anonymous_ok(route("PUT", "/v2/a/manifests/x"), ORIGIN)
    assert not policy(access=Access(pull=Rule(users=True))).anonymous_ok(route("GET", "/v2/a/manifests/x"), ORIGIN)


def test_a_mount_needs_pull_on_its_source_too() -> None:
    mount = route("POST", f"/v2/team/app/blobs/uploads/?mount={DIGEST}&from=secret/base")
    assert Policy.needs(mount) == [(Action.PUSH, "team/app"), (Action.PULL, "secret/base")]
    open_push = Access(push=Rule(anyone=True))
    assert policy(access=open_push).anonymous_ok(mount, ORIGIN)  # push and pull are both open to anyone
    closed_source = Access(push=Rule(anyone=True), repositories=(RepositoryRule("secret/**", pull=Rule(users=True)),))
    p = policy(access=closed_source)
    assert not p.anonymous_ok(mount, ORIGIN)  # push on team/app is open, but pull on the source needs a login
    assert p.anonymous_ok(route("POST", "/v2/team/app/blobs/uploads/"), ORIGIN)  # the same upload without the mount
    assert p.anonymous_ok(route("POST", f"/v2/team/app/blobs/uploads/?mount={DIGEST}&from=public/base"), ORIGIN)


# ------------------------------------------------------------------ refusals before anyone is identified


def test_no_credentials_on_the_ping_challenges_without_scope() -> None:
    err = policy().no_credentials(route("GET", "/v2/"), ORIGIN)
    assert (err.status, err.code) == (401, "UNAUTHORIZED")
    assert err.headers["WWW-Authenticate"] == f'Bearer realm="{REALM}",service="registry.example"'


def test_no_credentials_on_a_write_says_who_may_and_how_to_log_in() -> None:
    err = policy().no_credentials(route("PUT", "/v2/a/manifests/x"), ORIGIN)
    assert (err.status, err.code) == (401, "UNAUTHORIZED")
    assert "docker login registry.example:5043" in err.message
    assert "a member of group pusher" in err.message
    assert 'scope="repository:a:pull,push"' in err.headers["WWW-Authenticate"]


def test_invalid_credentials_say_how_to_recover() -> None:
    err = policy("basic").invalid_credentials(ORIGIN)
    assert (err.status, err.code) == (401, "UNAUTHORIZED")
    assert err.headers == {"WWW-Authenticate": 'Basic realm="basic-realm"'}
    assert "docker login registry.example:5043" in err.message and "docker logout" in err.message


# ------------------------------------------------------------------ verdicts


def test_judge_identity_allows_the_group_and_denies_naming_the_group() -> None:
    p = policy()
    p.judge_identity(route("PUT", "/v2/a/manifests/x"), PUSHER, ORIGIN)  # no exception: allowed
    p.judge_identity(route("GET", "/v2/"), READER, ORIGIN)  # the ping: any verified user
    with pytest.raises(ProxyError) as info:
        p.judge_identity(route("PUT", "/v2/a/manifests/x"), READER, ORIGIN)
    err = info.value
    assert (err.status, err.code) == (403, "DENIED")
    assert err.message == "push on a denied: user 'reader' is not a member of group pusher"
    assert "WWW-Authenticate" not in err.headers  # a 403 challenges nobody


def test_judge_identity_denies_a_mount_for_the_source() -> None:
    p = policy(access=Access(pull=Rule.of_groups(["readers"])))
    mount = route("POST", f"/v2/team/app/blobs/uploads/?mount={DIGEST}&from=secret/base")
    with pytest.raises(ProxyError) as info:
        p.judge_identity(mount, PUSHER, ORIGIN)
    assert info.value.status == 403 and "pull on secret/base" in info.value.message
    assert "readers" in info.value.message


def test_judge_claims_insufficient_scope() -> None:
    p = policy()
    put = route("PUT", "/v2/a/manifests/x")
    pull_only = Claims("mark", (Grant("repository", "a", ("pull",)),), "fp")
    with pytest.raises(ProxyError) as info:
        p.judge_claims(put, pull_only, PUSHER, ORIGIN)
    err = info.value
    assert (err.status, err.code) == (401, "DENIED")
    assert err.headers["WWW-Authenticate"].endswith(',scope="repository:a:pull,push",error="insufficient_scope"')
    assert "does not grant push" in err.message  # mark may push: the token is just too narrow
    with pytest.raises(ProxyError) as info:
        p.judge_claims(put, Claims("reader", (Grant("repository", "a", ("pull",)),), "fp"), READER, ORIGIN)
    assert "user 'reader' is not a member of group pusher" in info.value.message
    with pytest.raises(ProxyError) as info:
        p.judge_claims(put, Claims("", (), ""), None, ORIGIN)
    assert (info.value.status, info.value.code) == (401, "UNAUTHORIZED")
    assert 'error="insufficient_scope"' in info.value.headers["WWW-Authenticate"]
    p.judge_claims(put, Claims("mark", (Grant("repository", "a", ("pull", "push")),), "fp"), PUSHER, ORIGIN)
