"""What a robot may do: its scopes, within what ``access`` gives a ``users``-level identity.

The rule under test (decided in ``auth.userfiles.robots``): allowed = access
admits Identity("robot$NAME", groups named on the robot) AND a scope glob of
the robot matches. It holds for Basic (403 naming the robot and the missing
scope), token grants (narrowed) and token use (401 insufficient_scope), and a
robot's token dies when the robot expires, is removed or is rotated.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from auth.access import Access, Action, Identity, RepositoryRule, Rule, Verdict, decide
from auth.decision import Origin, Policy, valid_claims
from auth.errors import ProxyError
from auth.routes import Router
from auth.scopes import grant_scopes, parse_scopes
from auth.tokens import TokenAuthority
from auth.userfiles import robots as rf
from auth.userfiles.store import RELOAD_INTERVAL, UserStore
from proxy.http.verify import Verifier

NOW = 1_800_000_000.0
ORIGIN = Origin("https", "registry.example:5043", "192.0.2.7")
ROUTER = Router(token_path="/token")
OPEN_PUSH = Access(push=Rule(users=True), delete=Rule(users=True))  # access lets any user write


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def robot(name: str = "ci", secret: str = "s3cret", *, push: tuple[str, ...] = ("team-a/**",),
          pull: tuple[str, ...] = (), groups: frozenset[str] = frozenset(), expires: float = NOW + 3600) -> rf.Robot:
    return rf.make_robot(name, rf.hash_secret(secret), push=push, pull=pull, groups=groups, created=NOW,
                         expires=expires)


def ident(r: rf.Robot) -> Identity:
    return Identity(r.username, r.groups, r.scopes)


def policy(access: Access) -> Policy:
    return Policy(access=access, mode="bearer", basic_realm="basic-realm", service="registry.example",
                  token_path="/token")


# ------------------------------------------------------------------ the rule


@pytest.mark.parametrize(
    ("access", "groups", "action", "repo", "allowed"),
    [
        (OPEN_PUSH, (), Action.PUSH, "team-a/app", True),  # in scope, access allows users
        (OPEN_PUSH, (), Action.PUSH, "team-b/app", False),  # out of scope: access alone is not enough
        (OPEN_PUSH, (), Action.DELETE, "team-a/app", False),  # an action it was not given
        (OPEN_PUSH, (), Action.PULL, "team-a/app", True),  # push implies pull
        (OPEN_PUSH, (), Action.PULL, "public/base", False),  # pull open to anyone, but not in its scopes
        (Access(), (), Action.PUSH, "team-a/app", False),  # default push: [pusher]; a robot is no member
        (Access(), ("pusher",), Action.PUSH, "team-a/app", True),  # ... unless the robot names the group
        (Access(), ("pusher",), Action.PUSH, "team-b/app", False),  # the group never widens the scopes
        (Access(repositories=(RepositoryRule("team-a/secret", push=Rule.of_groups(["admins"])),)),
         ("pusher",), Action.PUSH, "team-a/secret", False),  # a repository rule still applies
    ],
)
def test_robot_rights_are_scopes_within_access(access: Access, groups: tuple[str, ...], action: Action,
                                               repo: str, allowed: bool) -> None:
    who = ident(robot(groups=frozenset(groups)))
    assert access.allowed(who, action, repo, "") is allowed
    assert (decide(access, who, action, repo, "") is Verdict.ALLOW) is allowed
    assert (action in access.grant(who, repo, list(Action), "")) is allowed


def test_people_are_untouched_by_scopes() -> None:
    person = Identity("mark", frozenset({"pusher"}))
    assert Access().allowed(person, Action.PUSH, "team-b/app", "")
    assert person.in_scope(Action.DELETE, "anything")


def test_networks_still_apply_to_robots() -> None:
    import ipaddress

    access = Access(push=Rule(users=True, networks=(ipaddress.ip_network("10.0.0.0/8"),)))
    who = ident(robot())
    assert access.allowed(who, Action.PUSH, "team-a/app", "10.1.2.3")
    assert decide(access, who, Action.PUSH, "team-a/app", "192.0.2.7") is Verdict.WRONG_NETWORK


def test_token_grants_are_narrowed_to_the_scopes() -> None:
    who = ident(robot(pull=("base/*",)))
    grants = grant_scopes(OPEN_PUSH, who, parse_scopes(
        ["repository:team-a/app:pull,push,delete repository:team-b/app:pull,push",
         "repository:base/alpine:pull", "registry:catalog:*"]), "")
    by_name = {g.name: g.actions for g in grants}
    assert by_name == {"team-a/app": ("pull", "push"), "team-b/app": (), "base/alpine": ("pull",),
                       "catalog": ("*",)}


# ------------------------------------------------------------------ refusals name the robot and the scope


def test_basic_refusal_is_403_naming_the_robot_and_the_missing_scope() -> None:
    route = ROUTER.parse("PUT", "/v2/team-b/app/manifests/v1")
    with pytest.raises(ProxyError) as info:
        policy(OPEN_PUSH).judge_identity(route, ident(robot()), ORIGIN)
    err = info.value
    assert (err.status, err.code) == (403, "DENIED")
    assert "robot 'robot$ci' has no push scope matching team-b/app" in err.message
    assert "team-a/**" in err.message
    policy(OPEN_PUSH).judge_identity(ROUTER.parse("PUT", "/v2/team-a/app/manifests/v1"), ident(robot()), ORIGIN)


def test_a_robot_access_refuses_says_so_not_the_scope() -> None:
    route = ROUTER.parse("PUT", "/v2/team-a/app/manifests/v1")
    with pytest.raises(ProxyError) as info:
        policy(Access()).judge_identity(route, ident(robot()), ORIGIN)
    assert info.value.status == 403 and "user 'robot$ci' is not a member of group pusher" in info.value.message


def test_a_mount_from_outside_the_scopes_is_refused_for_the_source() -> None:
    digest = "sha256:" + "a" * 64
    route = ROUTER.parse("POST", f"/v2/team-a/app/blobs/uploads/?mount={digest}&from=team-b/base")
    with pytest.raises(ProxyError) as info:
        policy(OPEN_PUSH).judge_identity(route, ident(robot()), ORIGIN)
    assert "no pull scope matching team-b/base" in info.value.message


def test_token_refusal_is_401_insufficient_scope_naming_the_robot() -> None:
    who = ident(robot())
    tokens = TokenAuthority(b"k" * 32, "registry.example", "rap", 300)
    grants = grant_scopes(OPEN_PUSH, who, parse_scopes(["repository:team-b/app:pull,push"]), "")
    claims = tokens.verify(tokens.issue(who.name, grants).token)
    with pytest.raises(ProxyError) as info:
        policy(OPEN_PUSH).judge_claims(ROUTER.parse("PUT", "/v2/team-b/app/manifests/v1"), claims, who, ORIGIN)
    err = info.value
    assert (err.status, err.code) == (401, "DENIED")
    assert 'error="insufficient_scope"' in err.headers["WWW-Authenticate"]
    assert "robot 'robot$ci' has no push scope matching team-b/app" in err.message


# ------------------------------------------------------------------ tokens die with their robot


@pytest.fixture
def store_files(tmp_path: Path) -> tuple[Path, Path, Path]:
    htpasswd, groups, robots = tmp_path / "users.htpasswd", tmp_path / "users.groups", tmp_path / "robots.yml"
    htpasswd.write_text("")
    groups.write_text("")
    return htpasswd, groups, robots


def write(path: Path, *robots: rf.Robot) -> None:
    path.write_text("".join(rf.format_line(r) + "\n" for r in robots))
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


class World:
    def __init__(self, files: tuple[Path, Path, Path]) -> None:
        self.robots = files[2]
        self.clock, self.wall = Clock(100.0), Clock(NOW)
        self.store = UserStore(files[0], files[1], robots=files[2], clock=self.clock, wall_clock=self.wall)
        self.tokens = TokenAuthority(b"k" * 32, "registry.example", "rap", 300, clock=self.wall)

    def token(self, user: str, secret: str) -> str:
        who = self.store.verify_robot(user, secret)
        assert who is not None
        grants = grant_scopes(OPEN_PUSH, who, parse_scopes(["repository:team-a/app:pull,push"]), "")
        return self.tokens.issue(who.name, grants, self.store.snapshot().fingerprint(who.name)).token

    def valid(self, token: str) -> bool:
        return valid_claims(self.tokens, self.store, token) is not None

    def change(self, *robots: rf.Robot) -> None:
        write(self.robots, *robots)
        self.clock.now += RELOAD_INTERVAL  # the store re-reads at most once a second


def test_a_token_dies_when_its_robot_expires(store_files: tuple[Path, Path, Path]) -> None:
    write(store_files[2], robot(expires=NOW + 60))
    w = World(store_files)
    token = w.token("robot$ci", "s3cret")
    assert w.valid(token)
    w.wall.now = NOW + 60  # the token itself is still within its 300 s
    assert not w.valid(token)


@pytest.mark.parametrize("change", ["removed", "rotated", "rescoped", "extended"])
def test_a_token_dies_when_its_robot_changes(store_files: tuple[Path, Path, Path], change: str) -> None:
    write(store_files[2], robot())
    w = World(store_files)
    token = w.token("robot$ci", "s3cret")
    assert w.valid(token)
    w.change(*{"removed": (), "rotated": (robot(secret="new"),), "rescoped": (robot(push=("team-a/app",)),),
               "extended": (robot(expires=NOW + 7200),)}[change])
    assert not w.valid(token)


def test_a_token_outlives_an_edit_of_another_robot(store_files: tuple[Path, Path, Path]) -> None:
    write(store_files[2], robot())
    w = World(store_files)
    token = w.token("robot$ci", "s3cret")
    w.change(robot(), robot("other"))
    assert w.valid(token)


# ------------------------------------------------------------------ the transport's fast path


def test_the_verifier_checks_robots_without_its_password_pool(store_files: tuple[Path, Path, Path]) -> None:
    """A closed pool refuses work, so a robot login that still answers never went through it."""
    write(store_files[2], robot())
    w = World(store_files)
    verifier = Verifier(w.store, workers=1)
    verifier.close()

    async def logins() -> list[Identity | None]:
        return [await verifier.verify("robot$ci", "s3cret"), await verifier.verify("robot$ci", "nope")]

    good, bad = asyncio.run(logins())
    assert good is not None and good.name == "robot$ci" and bad is None
    with pytest.raises(RuntimeError):  # a person's check does need the pool
        asyncio.run(verifier.verify("mark", "pw"))
