"""More properties (issue 5): round trips of the parsers, and the whole decision over generated requests.

``test_fuzz.py`` proves the parsers never crash; these prove they keep what
is valid despite junk around it, and that method x path x identity run
through ``parse_route`` and the real ``Gate`` never lets a write through to
someone outside the allowed groups, nor anything outside /v2 and the token path.
"""

from __future__ import annotations

import asyncio
import base64

import bcrypt
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from auth.credentials import Basic, Invalid, parse_authorization
from auth.groups import parse_groups
from auth.htpasswd import parse_htpasswd
from auth.policy import Access, Action, Identity, Rule
from auth.scopes import ScopeError, parse_scope, parse_scopes
from auth.tokens import TokenAuthority
from proxy.gate import Gate, Origin, Refusal
from proxy.routes import RouteError, parse_route

FAST = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

component = st.from_regex(r"[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4})?", fullmatch=True)
repo_names = st.lists(component, min_size=1, max_size=3).map("/".join)
words = st.from_regex(r"[A-Za-z0-9._-]{1,10}", fullmatch=True)
junk_lines = st.text(alphabet=st.characters(blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
                     max_size=40).filter(lambda s: ":" not in s and not s.strip().startswith("#"))


@FAST
@given(repo_names, st.sets(st.sampled_from(["pull", "push", "delete", "*"]), min_size=1))
def test_scope_round_trip(name: str, actions: set[str]) -> None:
    scope = parse_scope(f"repository:{name}:{','.join(sorted(actions))}")
    assert (scope.name, scope.actions) == (name, frozenset(actions))
    assert parse_scope(scope.to_string()) == scope
    joined = parse_scopes([f"{scope.to_string()} registry:catalog:*"])
    assert joined[0] == scope and joined[1].type == "registry"


@FAST
@given(st.text(max_size=40))
def test_scope_with_bad_name_is_refused(name: str) -> None:
    assume(":" not in name and name)
    try:
        scope = parse_scope(f"repository:{name}:pull")
    except ScopeError:
        return
    assert scope.name == name and name == name.lower()


@FAST
@given(st.dictionaries(words.filter(lambda w: ":" not in w), st.sets(words, max_size=4), max_size=5),
       st.lists(junk_lines, max_size=5))
def test_group_file_keeps_valid_lines_among_junk(groups: dict[str, set[str]], junk: list[str]) -> None:
    lines = [f"{g}: {' '.join(sorted(users))}" for g, users in groups.items()]
    text = "\n".join(x for pair in zip(lines, junk + [""] * len(lines), strict=False) for x in pair)
    data = parse_groups(text, "g")
    for group, users in groups.items():
        assert users <= data.members.get(group, frozenset())


GOOD_HASH = bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()  # a real hash; the password does not matter


@FAST
@given(st.lists(words, min_size=1, max_size=4, unique=True), st.lists(junk_lines, max_size=4))
def test_htpasswd_keeps_valid_users_among_junk(users: list[str], junk: list[str]) -> None:
    lines = [f"{u}:{GOOD_HASH}" for u in users]
    data = parse_htpasswd("\n".join(junk + lines), "h")
    assert set(users) <= set(data.hashes)


@FAST
@given(st.text(max_size=20).filter(lambda u: ":" not in u), st.text(max_size=30))
def test_basic_round_trip(user: str, password: str) -> None:
    header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    assert parse_authorization([header]) == Basic(user, password)
    assert isinstance(parse_authorization([header, header]), Invalid)
    assert isinstance(parse_authorization(["Basic " + base64.b64encode(user.encode() + b"\xff:x").decode()]),
                      Invalid)


# ------------------------------------------------------------------ the whole decision


class TableVerifier:
    """Users with password "pw" and fixed groups; no bcrypt (the decision is what is tested)."""

    def __init__(self, users: dict[str, frozenset[str]]) -> None:
        self.users = users

    async def verify(self, user: str, password: str) -> Identity | None:
        groups = self.users.get(user)
        return Identity(user, groups) if groups is not None and password == "pw" else None


GROUPS = ["pusher", "admins", "ops", "readers"]
USERS = {"mark": frozenset({"pusher"}), "ann": frozenset({"admins", "readers"}), "rob": frozenset(),
         "olga": frozenset({"ops"})}
segments = st.sampled_from(["manifests", "blobs", "uploads", "tags", "list", "_catalog", "..", "%2e%2e", "",
                            "sha256:" + "a" * 64, "latest", "team", "app", "UP", "?from=team/app",
                            "?from=other", "?mount=sha256:" + "b" * 64 + "&from=x/y", "referrers"])
paths = st.one_of(st.builds(lambda p: "/v2/" + "/".join(p), st.lists(segments, max_size=6)),
                  st.sampled_from(["/v2", "/v2/", "/token", "/", "/v1/x", "/v2x", "//v2/", "/V2/"]),
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
def test_no_write_outside_the_allowed_groups_and_only_v2_is_forwarded(
    method: str, path: str, authorization: list[str], push: Rule, delete: Rule, mode: str
) -> None:
    access = Access(pull=Rule(anyone=True), push=push, delete=delete)
    tokens = TokenAuthority(b"k" * 32, "svc", "iss", 300)
    gate = Gate(access=access, store=None, verifier=TableVerifier(USERS), tokens=tokens,  # type: ignore[arg-type]
                refresh_tokens=tokens, mode=mode, basic_realm="r", token_path="/token", token_realm=None)
    try:
        route = parse_route(method, path)
    except RouteError:
        return  # refused before any identity is looked at: never forwarded
    # only /v2 routes exist (the token path is its own handler, never forwarded)
    assert path == "/v2" or path.startswith("/v2/")
    try:
        user = asyncio.run(gate.check(route, authorization, Origin("https", "h", "10.0.0.1")))
    except Refusal as refusal:
        assert 400 <= refusal.status < 500
        return
    if route.action in (Action.PUSH, Action.DELETE):  # an allowed write
        rule = push if route.action is Action.PUSH else delete
        assert user is not None and USERS[user] & rule.groups, (method, path, user)
        assert route.name is not None
