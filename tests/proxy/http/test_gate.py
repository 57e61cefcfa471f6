"""Gate.check with real parts: a UserStore over Apache-made files, the Verifier, real tokens.

The pure judging half (``auth.decision.Policy``) has its own tests in
``tests/auth/test_decision.py``; these prove the whole gate, with bcrypt off
the event loop, gives the answers clients see.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from auth.access import Access, Action, Identity, Rule
from auth.decision import Origin, Policy
from auth.errors import ProxyError
from auth.routes import Router
from auth.scopes import grant_scopes, parse_scopes
from auth.throttle import LoginThrottle
from auth.tokens import TokenAuthority
from auth.userfiles import Snapshot, UserStore, parse_groups, parse_htpasswd
from proxy.http.gate import Gate
from proxy.http.runtime import Stats
from proxy.http.verify import Verifier

HTPASSWD_BIN = "/usr/bin/htpasswd"
SERVICE = "registry.example"
ORIGIN = Origin("https", "registry.example:5043")
DIGEST = "sha256:" + "b" * 64
BEARER_PING = 'Bearer realm="https://registry.example:5043/token",service="registry.example"'
BASIC_CHALLENGE = 'Basic realm="basic-realm"'
ROUTER = Router(token_path="/token")
parse_route = ROUTER.parse


def challenge(err: ProxyError) -> str | None:
    """What the old ``Refusal.challenge`` was: the ``WWW-Authenticate`` header, if any."""
    return err.headers.get("WWW-Authenticate")


class FakeClock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def apache(path: Path, user: str, password: str) -> None:
    create = [] if path.exists() else ["-c"]
    subprocess.run([HTPASSWD_BIN, "-b", "-B", "-C", "4", *create, str(path), user, password],
                   check=True, capture_output=True, timeout=60)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


def basic(user: str, password: str) -> list[str]:
    return ["Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()]


@dataclass
class World:
    htpasswd: Path
    groups: Path
    clock: FakeClock
    store: UserStore
    tokens: TokenAuthority
    make: Callable[..., Gate]

    def token(self, who: Identity | None, *scopes: str, access: Access | None = None, address: str = "") -> list[str]:
        grants = grant_scopes(access or Access(), who, parse_scopes(scopes), address)
        fingerprint = self.store.snapshot().fingerprint(who.name) if who else ""
        return ["Bearer " + self.tokens.issue(who.name if who else "", grants, fingerprint).token]

    def identity(self, user: str) -> Identity:
        who = self.store.snapshot().identity(user)
        assert who is not None
        return who

    def reload(self) -> None:
        self.clock.now += 1.5


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    htpasswd, groups = tmp_path / "users.htpasswd", tmp_path / "users.groups"
    apache(htpasswd, "mark", "pusherpwd")
    apache(htpasswd, "reader", "readerpwd")
    apache(htpasswd, "both", "bothpwd")
    groups.write_text("pusher: mark both\nreaders: reader both\n")
    clock = FakeClock()
    store = UserStore(htpasswd, groups, clock=clock)
    key = b"t" * 32
    tokens = TokenAuthority(key, SERVICE, "registry-auth-proxy", 300)
    refresh = TokenAuthority(key, SERVICE + "/refresh", "registry-auth-proxy", 3600)
    verifiers: list[Verifier] = []

    def make(mode: str = "bearer", access: Access | None = None, token_realm: str | None = None) -> Gate:
        verifier = Verifier(store, workers=2)
        verifiers.append(verifier)
        policy = Policy(access=access or Access(), mode=mode, basic_realm="basic-realm", service=SERVICE,
                        token_path="/token", token_realm=token_realm)
        return Gate(policy=policy, store=store, verifier=verifier, tokens=tokens, refresh_tokens=refresh,
                    throttle=None, stats=Stats())

    yield World(htpasswd, groups, clock, store, tokens, make)
    for verifier in verifiers:
        verifier.close()


async def refused(gate: Gate, method: str, path: str, authorization: list[str]) -> ProxyError:
    with pytest.raises(ProxyError) as info:
        await gate.check(parse_route(method, path), authorization, ORIGIN)
    return info.value


# ------------------------------------------------------------------ anonymous reads


@pytest.mark.parametrize("mode", ["bearer", "basic"])
@pytest.mark.parametrize(
    "authorization",
    [[], ["Basic Og=="], ["Basic garbage!!"], ["Bearer not-a-token"], ["Bearer a b"], ["Digest x"],
     ["Basic bWFyazpwdXNoZXJwd2Q=", "Basic eDp5"], basic("mark", "stale-password"), basic("ghost", "x")],
)
async def test_anonymous_read_ignores_authorization(world: World, mode: str, authorization: list[str]) -> None:
    gate = world.make(mode)
    for method, path in [("GET", "/v2/a/manifests/latest"), ("HEAD", f"/v2/a/blobs/{DIGEST}"),
                         ("GET", "/v2/a/tags/list"), ("HEAD", "/v2/a/manifests/latest")]:
        assert await gate.check(parse_route(method, path), authorization, ORIGIN) is None
    assert await gate.check(parse_route("GET", "/v2/_catalog"), [], ORIGIN) is None  # open, and nothing sent


# ------------------------------------------------------------------ the catalog: open, but filtered by who asks


@pytest.mark.parametrize("mode", ["bearer", "basic"])
async def test_the_catalog_is_told_who_asks_when_credentials_are_sent(world: World, mode: str) -> None:
    gate = world.make(mode)
    catalog = parse_route("GET", "/v2/_catalog")
    assert await gate.check(catalog, basic("mark", "pusherpwd"), ORIGIN) == world.identity("mark")
    assert await gate.check(catalog, basic("reader", "readerpwd"), ORIGIN) == world.identity("reader")
    token = world.token(world.identity("mark"), "registry:catalog:*")
    assert await gate.check(catalog, token, ORIGIN) == world.identity("mark")
    assert await gate.check(catalog, world.token(None, "registry:catalog:*"), ORIGIN) is None


@pytest.mark.parametrize("mode", ["bearer", "basic"])
@pytest.mark.parametrize(
    "authorization",
    [["Basic garbage!!"], ["Bearer not-a-token"], ["Bearer a b"], ["Digest x"],
     ["Basic bWFyazpwdXNoZXJwd2Q=", "Basic eDp5"], basic("mark", "stale-password"), basic("ghost", "x")],
)
async def test_the_catalog_refuses_credentials_that_do_not_check_out(
    world: World, mode: str, authorization: list[str]
) -> None:
    """A listing filtered by a wrong identity would be wrong either way: the client is told to log in again."""
    refusal = await refused(world.make(mode), "GET", "/v2/_catalog", authorization)
    assert (refusal.status, refusal.code) == (401, "UNAUTHORIZED")
    assert "pusherpwd" not in refusal.message and "stale-password" not in refusal.message


async def test_the_catalog_with_a_token_without_the_catalog_grant_asks_for_it(world: World) -> None:
    refusal = await refused(world.make(), "GET", "/v2/_catalog", world.token(world.identity("mark"),
                                                                             "repository:a:pull"))
    assert refusal.status == 401
    assert challenge(refusal) == f'{BEARER_PING},scope="registry:catalog:*",error="insufficient_scope"'


# ------------------------------------------------------------------ ping


async def test_ping_without_credentials_challenges_bearer(world: World) -> None:
    for authorization in ([], ["Basic Og=="]):
        refusal = await refused(world.make(), "GET", "/v2/", authorization)
        assert (refusal.status, refusal.code) == (401, "UNAUTHORIZED")
        assert challenge(refusal) == BEARER_PING


async def test_ping_challenge_uses_configured_token_realm(world: World) -> None:
    refusal = await refused(world.make(token_realm="https://auth.example/token"), "GET", "/v2/", [])
    assert challenge(refusal) == 'Bearer realm="https://auth.example/token",service="registry.example"'


async def test_ping_without_credentials_challenges_basic_in_basic_mode(world: World) -> None:
    refusal = await refused(world.make("basic"), "HEAD", "/v2/", [])
    assert (refusal.status, challenge(refusal)) == (401, BASIC_CHALLENGE)


@pytest.mark.parametrize("mode", ["bearer", "basic"])
async def test_ping_with_valid_basic_is_that_user(world: World, mode: str) -> None:
    gate = world.make(mode)
    ping = parse_route("GET", "/v2/")
    assert await gate.check(ping, basic("mark", "pusherpwd"), ORIGIN) == world.identity("mark")
    assert await gate.check(ping, basic("reader", "readerpwd"), ORIGIN) == world.identity("reader")


@pytest.mark.parametrize("mode", ["bearer", "basic"])
@pytest.mark.parametrize("creds", [("mark", "wrong"), ("ghost", "pusherpwd"), ("", "x"), ("mark", "")])
async def test_ping_with_wrong_password_is_401(world: World, mode: str, creds: tuple[str, str]) -> None:
    refusal = await refused(world.make(mode), "GET", "/v2/", basic(*creds))
    assert (refusal.status, refusal.code) == (401, "UNAUTHORIZED")
    assert "docker login registry.example:5043" in refusal.message
    assert challenge(refusal) == (BASIC_CHALLENGE if mode == "basic" else BEARER_PING)


async def test_ping_with_malformed_header_is_401(world: World) -> None:
    refusal = await refused(world.make(), "GET", "/v2/", ["Basic !!!"])
    assert refusal.status == 401 and "malformed" in refusal.message


async def test_ping_with_tokens(world: World) -> None:
    gate = world.make()
    route = parse_route("GET", "/v2/")
    mark = world.identity("mark")
    assert await gate.check(route, world.token(mark, "repository:a:pull"), ORIGIN) == mark
    assert await gate.check(route, world.token(None, "repository:a:pull"), ORIGIN) is None
    refusal = await refused(gate, "GET", "/v2/", ["Bearer nope"])
    assert refusal.status == 401 and challenge(refusal) == BEARER_PING


# ------------------------------------------------------------------ writes with Basic


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("PUT", "/v2/team/app/manifests/latest", "repository:team/app:pull,push"),
        ("POST", "/v2/team/app/blobs/uploads/", "repository:team/app:pull,push"),
        ("DELETE", f"/v2/team/app/manifests/{DIGEST}", "repository:team/app:delete"),
    ],
)
async def test_anonymous_write_is_401_with_scope(world: World, method: str, path: str, scope: str) -> None:
    refusal = await refused(world.make(), method, path, [])
    assert (refusal.status, refusal.code) == (401, "UNAUTHORIZED")
    assert challenge(refusal) == f'{BEARER_PING},scope="{scope}"'
    assert "pusher" in refusal.message
    basic_refusal = await refused(world.make("basic"), method, path, ["Basic Og=="])
    assert (basic_refusal.status, challenge(basic_refusal)) == (401, BASIC_CHALLENGE)


@pytest.mark.parametrize("mode", ["bearer", "basic"])
async def test_reader_write_is_403_denied(world: World, mode: str) -> None:
    refusal = await refused(world.make(mode), "PUT", "/v2/a/manifests/x", basic("reader", "readerpwd"))
    assert (refusal.status, refusal.code) == (403, "DENIED")
    assert "'reader'" in refusal.message and "pusher" in refusal.message
    assert challenge(refusal) is None


async def test_pusher_write_and_delete_allowed_with_basic(world: World) -> None:
    gate = world.make("basic")
    for method, path in [("PUT", "/v2/a/manifests/x"), ("POST", "/v2/a/blobs/uploads/"),
                         ("PATCH", "/v2/a/blobs/uploads/u-1"), ("DELETE", f"/v2/a/blobs/{DIGEST}")]:
        assert await gate.check(parse_route(method, path), basic("mark", "pusherpwd"), ORIGIN) == world.identity("mark")


async def test_write_with_wrong_password_is_401(world: World) -> None:
    refusal = await refused(world.make("basic"), "PUT", "/v2/a/manifests/x", basic("mark", "nope"))
    assert (refusal.status, refusal.code) == (401, "UNAUTHORIZED")


async def test_write_with_malformed_or_double_header_is_401(world: World) -> None:
    for authorization in (["Basic !!!"], basic("mark", "pusherpwd") * 2, ["Bearer a b"]):
        refusal = await refused(world.make(), "PUT", "/v2/a/manifests/x", authorization)
        assert (refusal.status, refusal.code) == (401, "UNAUTHORIZED")
        assert "scope=" in (challenge(refusal) or "")


async def test_restricted_catalog(world: World) -> None:
    gate = world.make(access=Access(catalog=Rule.of_groups(["pusher"])))
    refusal = await refused(gate, "GET", "/v2/_catalog", [])
    assert refusal.status == 401 and challenge(refusal) == f'{BEARER_PING},scope="registry:catalog:*"'
    denied = await refused(gate, "GET", "/v2/_catalog", basic("reader", "readerpwd"))
    assert denied.status == 403
    catalog = parse_route("GET", "/v2/_catalog")
    assert await gate.check(catalog, basic("mark", "pusherpwd"), ORIGIN) == world.identity("mark")
    restricted = Access(catalog=Rule.of_groups(["pusher"]))
    token = world.token(world.identity("mark"), "registry:catalog:*", access=restricted)
    assert await gate.check(parse_route("GET", "/v2/_catalog"), token, ORIGIN) == world.identity("mark")


# ------------------------------------------------------------------ writes with tokens


async def test_token_with_push_allows_the_write(world: World) -> None:
    token = world.token(world.identity("mark"), "repository:a:pull,push")
    assert await world.make().check(parse_route("PUT", "/v2/a/manifests/x"), token, ORIGIN) == world.identity("mark")


async def test_token_lacking_push_is_401_insufficient_scope(world: World) -> None:
    gate = world.make()
    reader = await refused(gate, "PUT", "/v2/a/manifests/x", world.token(world.identity("reader"),
                                                                          "repository:a:pull,push"))
    assert reader.status == 401
    assert challenge(reader) == f'{BEARER_PING},scope="repository:a:pull,push",error="insufficient_scope"'
    assert "'reader'" in reader.message

    pusher = await refused(gate, "PUT", "/v2/a/manifests/x", world.token(world.identity("mark"), "repository:a:pull"))
    assert pusher.status == 401 and 'error="insufficient_scope"' in (challenge(pusher) or "")
    assert "does not grant push" in pusher.message

    other_repo = await refused(gate, "PUT", "/v2/b/manifests/x",
                               world.token(world.identity("mark"), "repository:a:pull,push"))
    assert other_repo.status == 401

    anonymous = await refused(gate, "PUT", "/v2/a/manifests/x", world.token(None, "repository:a:pull,push"))
    assert (anonymous.status, anonymous.code) == (401, "UNAUTHORIZED")
    assert 'error="insufficient_scope"' in (challenge(anonymous) or "")


async def test_token_of_a_user_whose_password_changed_is_refused(world: World) -> None:
    gate = world.make()
    token = world.token(world.identity("mark"), "repository:a:pull,push")
    route = parse_route("PUT", "/v2/a/manifests/x")
    assert await gate.check(route, token, ORIGIN) == world.identity("mark")
    apache(world.htpasswd, "mark", "a-new-password")
    world.reload()
    refusal = await refused(gate, "PUT", "/v2/a/manifests/x", token)
    assert refusal.status == 401 and "new token" in refusal.message
    assert (await refused(gate, "GET", "/v2/", token)).status == 401


async def test_token_of_a_user_removed_from_the_group_is_refused(world: World) -> None:
    gate = world.make()
    token = world.token(world.identity("mark"), "repository:a:pull,push")
    world.groups.write_text("pusher: both\n")
    st = world.groups.stat()
    os.utime(world.groups, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
    world.reload()
    assert (await refused(gate, "PUT", "/v2/a/manifests/x", token)).status == 401


async def test_refresh_token_is_not_an_access_token(world: World) -> None:
    gate = world.make()
    who = world.identity("mark")
    refresh = gate.refresh_tokens.issue("mark", grant_scopes(Access(), who, parse_scopes(["repository:a:push"]), ""),
                                        world.store.snapshot().fingerprint("mark"))
    refusal = await refused(gate, "PUT", "/v2/a/manifests/x", ["Bearer " + refresh.token])
    assert refusal.status == 401


# ------------------------------------------------------------------ cross-repository mount

PULL_RESTRICTED = Access(pull=Rule.of_groups(["readers"]))
MOUNT = f"/v2/team/app/blobs/uploads/?mount={DIGEST}&from=secret/base"


async def test_mount_needs_pull_on_from_with_basic(world: World) -> None:
    gate = world.make("basic", access=PULL_RESTRICTED)
    refusal = await refused(gate, "POST", MOUNT, basic("mark", "pusherpwd"))  # pusher, not a reader
    assert (refusal.status, refusal.code) == (403, "DENIED")
    assert "pull on secret/base" in refusal.message
    plain_upload = parse_route("POST", "/v2/team/app/blobs/uploads/")
    assert await gate.check(plain_upload, basic("mark", "pusherpwd"), ORIGIN) == world.identity("mark")
    assert await gate.check(parse_route("POST", MOUNT), basic("both", "bothpwd"), ORIGIN) == world.identity("both")


async def test_mount_needs_pull_on_from_with_tokens(world: World) -> None:
    gate = world.make(access=PULL_RESTRICTED)
    both = world.identity("both")
    without = world.token(both, "repository:team/app:pull,push", access=PULL_RESTRICTED)
    refusal = await refused(gate, "POST", MOUNT, without)
    assert refusal.status == 401 and 'error="insufficient_scope"' in (challenge(refusal) or "")
    with_pull = world.token(both, "repository:team/app:pull,push", "repository:secret/base:pull",
                            access=PULL_RESTRICTED)
    assert await gate.check(parse_route("POST", MOUNT), with_pull, ORIGIN) == world.identity("both")
    mark = world.identity("mark")  # asks for pull on the source, is narrowed away: still refused
    narrowed = world.token(mark, "repository:team/app:pull,push", "repository:secret/base:pull",
                           access=PULL_RESTRICTED)
    assert (await refused(gate, "POST", MOUNT, narrowed)).status == 401


async def test_anonymous_mount_is_401_even_when_pull_is_open(world: World) -> None:
    refusal = await refused(world.make(), "POST", MOUNT, [])
    assert refusal.status == 401
    mount = parse_route("POST", MOUNT)
    assert await world.make().check(mount, basic("mark", "pusherpwd"), ORIGIN) == world.identity("mark")


async def test_anonymous_read_is_401_when_pull_needs_a_login(world: World) -> None:
    gate = world.make(access=Access(pull=Rule(users=True)))
    refusal = await refused(gate, "GET", "/v2/a/manifests/x", [])
    assert challenge(refusal) == f'{BEARER_PING},scope="repository:a:pull"'
    read = parse_route("GET", "/v2/a/manifests/x")
    assert await gate.check(read, basic("reader", "readerpwd"), ORIGIN) == world.identity("reader")
    assert (await refused(gate, "GET", "/v2/a/manifests/x", basic("reader", "bad"))).status == 401


# ------------------------------------------------------------------ the policy in force, and the client's network

TEN = (ipaddress.ip_network("10.0.0.0/8"),)
INSIDE = Origin("https", "registry.example:5043", "10.0.0.5")
OUTSIDE = Origin("https", "registry.example:5043", "192.0.2.1")


async def test_a_token_issued_before_the_policy_tightened_opens_nothing(world: World) -> None:
    token = world.token(world.identity("mark"), "repository:a:pull,push")  # issued under the default rules
    put = parse_route("PUT", "/v2/a/manifests/x")
    assert await world.make().check(put, token, ORIGIN) == world.identity("mark")
    tightened = world.make(access=Access(push=Rule.of_groups(["admins"])))  # what a reload puts in force
    refusal = await refused(tightened, "PUT", "/v2/a/manifests/x", token)
    assert refusal.status == 401
    assert challenge(refusal) == f'{BEARER_PING},scope="repository:a:pull,push",error="insufficient_scope"'
    assert "group admins" in refusal.message
    assert await tightened.check(parse_route("GET", "/v2/a/manifests/x"), token, ORIGIN) is None  # pull: still open


async def test_the_right_user_from_the_wrong_network_is_403_with_basic_and_tokens(world: World) -> None:
    access = Access(pull=Rule(users=True, networks=TEN), push=Rule(groups=frozenset({"pusher"}), networks=TEN))
    put = parse_route("PUT", "/v2/a/manifests/x")
    for mode in ("basic", "bearer"):
        gate = world.make(mode, access=access)
        assert await gate.check(put, basic("mark", "pusherpwd"), INSIDE) == world.identity("mark")
        mapped = Origin("https", "registry.example:5043", "::ffff:10.0.0.5")
        assert await gate.check(put, basic("mark", "pusherpwd"), mapped) == world.identity("mark")
        with pytest.raises(ProxyError) as info:
            await gate.check(put, basic("mark", "pusherpwd"), OUTSIDE)
        assert (info.value.status, info.value.code) == (403, "DENIED") and challenge(info.value) is None
        assert "192.0.2.1" in info.value.message and "10.0.0.0/8" in info.value.message
    inside_token = world.token(world.identity("mark"), "repository:a:pull,push", access=access,
                               address=INSIDE.client_ip)
    gate = world.make(access=access)
    assert await gate.check(put, inside_token, INSIDE) == world.identity("mark")
    with pytest.raises(ProxyError) as info:  # the same token carried elsewhere
        await gate.check(put, inside_token, OUTSIDE)
    assert (info.value.status, challenge(info.value)) == (403, None)


async def test_anonymous_from_the_wrong_network_is_403_not_a_challenge(world: World) -> None:
    gate = world.make(access=Access(pull=Rule(anyone=True, networks=TEN)))
    read = parse_route("GET", "/v2/a/manifests/x")
    assert await gate.check(read, [], INSIDE) is None
    for authorization in ([], ["Basic Og=="]):
        with pytest.raises(ProxyError) as info:
            await gate.check(read, authorization, OUTSIDE)
        assert (info.value.status, info.value.code, challenge(info.value)) == (403, "DENIED", None)


# ------------------------------------------------------------------ throttling in the Gate (from test_rel_throttle)


class CountingVerifier(Verifier):
    def __init__(self, store: UserStore) -> None:
        super().__init__(store, workers=1)
        self.calls = 0

    async def verify(self, user: str, password: str):  # type: ignore[no-untyped-def]
        self.calls += 1
        return await super().verify(user, password)


def _auth(user: str, password: str) -> list[str]:
    return ["Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()]


@pytest.fixture
def gate(tmp_path: Path):  # type: ignore[no-untyped-def]
    htpasswd, groups = tmp_path / "h", tmp_path / "g"
    subprocess.run(["htpasswd", "-c", "-b", "-B", "-C", "4", str(htpasswd), "mark", "pw"], check=True,
                   capture_output=True)
    groups.write_text("pusher: mark\n")
    store = UserStore(htpasswd, groups, cache_ttl=0)
    verifier = CountingVerifier(store)
    tokens = TokenAuthority(b"k" * 32, "svc", "iss", 300)
    policy = Policy(access=Access(), mode="basic", basic_realm="r", service="svc", token_path="/token",
                    token_realm=None)
    g = Gate(policy=policy, store=store, verifier=verifier, tokens=tokens, refresh_tokens=tokens,
             throttle=LoginThrottle(3, 300), stats=Stats())
    yield g
    verifier.close()


async def test_gate_refuses_with_429_before_bcrypt(gate: Gate) -> None:
    route = parse_route("POST", "/v2/a/blobs/uploads/")
    attacker, user = Origin("https", "h", "10.0.0.9"), Origin("https", "h", "10.0.0.1")
    for _ in range(3):  # the (address, user) limit: 3 wrong passwords for mark from one address
        with pytest.raises(ProxyError) as info:
            await gate.check(route, _auth("mark", "guess"), attacker)
        assert info.value.status == 401
    calls = gate.verifier.calls  # type: ignore[attr-defined]
    with pytest.raises(ProxyError) as info:
        await gate.check(route, _auth("mark", "pw"), attacker)  # even the right password: still throttled
    refusal = info.value
    assert (refusal.status, refusal.code) == (429, "TOO_MANY_REQUESTS")
    assert refusal.headers.get("Retry-After") is not None and 1 <= int(refusal.headers["Retry-After"]) <= 300
    assert gate.verifier.calls == calls  # type: ignore[attr-defined]  # no bcrypt for a refused attempt
    assert gate.stats.throttled == 1
    mark = Identity("mark", frozenset({"pusher"}))
    assert await gate.check(route, _auth("mark", "pw"), user) == mark  # another address is unaffected


# ------------------------------------------------------------------ the whole decision (from test_rel_fuzz)


class TableVerifier:
    """Users with password "pw" and fixed groups; no bcrypt (the decision is what is tested)."""

    def __init__(self, users: dict[str, frozenset[str]]) -> None:
        self.users = users

    async def verify(self, user: str, password: str) -> Identity | None:
        groups = self.users.get(user)
        return Identity(user, groups) if groups is not None and password == "pw" else None


class NoUsersStore:
    """The gate reads the user files' snapshot for every Bearer (before verifying it): an empty one."""

    snap = Snapshot(parse_htpasswd("", "h"), parse_groups("", "g"), "", 1)

    def snapshot(self) -> Snapshot:
        return self.snap


GROUPS = ["pusher", "admins", "ops", "readers"]
USERS = {"mark": frozenset({"pusher"}), "ann": frozenset({"admins", "readers"}), "rob": frozenset(),
         "olga": frozenset({"ops"})}
segments = st.sampled_from(["manifests", "blobs", "uploads", "tags", "list", "_catalog", "..", "%2e%2e", "",
                            "sha256:" + "a" * 64, "latest", "team", "app", "UP", "?from=team/app",
                            "?from=other", "?mount=sha256:" + "b" * 64 + "&from=x/y", "referrers"])
paths = st.one_of(st.builds(lambda p: "/v2/" + "/".join(p), st.lists(segments, max_size=6)),
                  st.sampled_from(["/v2", "/v2/", "/token", "/", "/v1/x", "/v2x", "//v2/", "/V2/", "/tok%65n"]),
                  st.text(max_size=30))
methods = st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get", "TRACE"])
credentials = st.one_of(
    st.just([]),
    st.builds(lambda u, p: ["Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()],
              st.sampled_from([*USERS, "nobody", ""]), st.sampled_from(["pw", "wrong", ""])),
    st.sampled_from([["Basic Og=="], ["Bearer x.y.z"], ["garbage"], ["Basic !!"]]),
)
group_rules = st.frozensets(st.sampled_from(GROUPS), max_size=2).map(Rule.of_groups)


@settings(max_examples=400, deadline=None, database=None)
@given(methods, paths, credentials, group_rules, group_rules, st.sampled_from(["basic", "bearer"]))
@example("PUT", "/v2/a/manifests/x", ["Bearer x.y.z"], Rule.of_groups(["pusher"]), Rule(), "bearer")
@example("POST", "/token", [], Rule.of_groups(["pusher"]), Rule(), "bearer")
@example("PUT", "/v2/a/manifests/x", ["Basic " + base64.b64encode(b"mark:pw").decode()], Rule.of_groups(["pusher"]),
         Rule(), "basic")  # an allowed write: the branch below must run at least once
def test_no_write_outside_the_allowed_groups_and_only_v2_is_forwarded(
    method: str, path: str, authorization: list[str], push: Rule, delete: Rule, mode: str
) -> None:
    access = Access(pull=Rule(anyone=True), push=push, delete=delete)
    tokens = TokenAuthority(b"k" * 32, "svc", "iss", 300)
    policy = Policy(access=access, mode=mode, basic_realm="r", service="svc", token_path="/token")
    gate = Gate(policy=policy, store=NoUsersStore(), verifier=TableVerifier(USERS), tokens=tokens,  # type: ignore[arg-type]
                refresh_tokens=tokens, throttle=None, stats=Stats())
    try:
        route = parse_route(method, path)
    except ProxyError:
        return  # refused before any identity is looked at: never forwarded
    if route.is_token:  # the token path is its own handler, never forwarded (and only GET/POST reach it)
        assert path.partition("?")[0] == "/token" and method in ("GET", "POST")
        return
    # only /v2 routes exist
    assert path == "/v2" or path.startswith("/v2/")
    try:
        user = asyncio.run(gate.check(route, authorization, Origin("https", "h", "10.0.0.1")))
    except ProxyError as refusal:
        assert 400 <= refusal.status < 500
        return
    if route.action in (Action.PUSH, Action.DELETE):  # an allowed write
        rule = push if route.action is Action.PUSH else delete
        assert user is not None and USERS[user.name] & rule.groups, (method, path, user)
        assert user.groups == USERS[user.name]  # the identity the verifier vouched for, not what was claimed
        assert route.name is not None
