"""Property tests: parsers of client- and operator-supplied text never crash, keep what is valid among junk,
and the policy never leaks writes.

The same property over the whole gate (method x path x identity through the
real ``Gate``) is in ``tests/proxy/http/test_gate.py``.
"""

from __future__ import annotations

import base64

import bcrypt
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from auth.access import Access, Action, Identity, Rule, Verdict, decide
from auth.credentials import Basic, Bearer, Invalid, parse_authorization
from auth.errors import ProxyError
from auth.names import valid_name
from auth.routes import Route, Router
from auth.scopes import Scope, ScopeError, parse_scope, parse_scopes
from auth.userfiles.groups import parse_groups
from auth.userfiles.hashing import check_password
from auth.userfiles.htpasswd import parse_htpasswd

ROUTER = Router(token_path="/token")
parse_route = ROUTER.parse

FAST = settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# ------------------------------------------------------------------ credentials

header_text = st.one_of(
    st.text(max_size=200),
    st.builds(lambda s, p: f"{s} {p}", st.sampled_from(["Basic", "basic", "Bearer", "BEARER", "Digest", ""]),
              st.text(max_size=120)),
    st.builds(lambda p: "Basic " + p, st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                                      "0123456789+/=: \t", max_size=80)),
    st.binary(max_size=60).map(lambda b: "Basic " + base64.b64encode(b).decode()),
)


@FAST
@given(st.lists(header_text, max_size=3))
def test_parse_authorization_never_raises(values: list[str]) -> None:
    creds = parse_authorization(values)
    assert creds is None or isinstance(creds, Basic | Bearer | Invalid)
    if creds is None:
        assert values == []
    if len(values) > 1:
        assert isinstance(creds, Invalid)
    if isinstance(creds, Bearer):
        assert creds.token and not any(c.isspace() for c in creds.token)


# ------------------------------------------------------------------ scopes

scope_text = st.one_of(
    st.text(max_size=80),
    st.text(alphabet="repositorygistyc():/,*._-aA0 \x00%", max_size=60),
    st.builds(lambda k, n, a: f"{k}:{n}:{a}", st.sampled_from(["repository", "registry", "repository(plugin)", "x"]),
              st.text(alphabet="abc/._-:A", max_size=20), st.text(alphabet="pullshdeto,*:", max_size=20)),
)


@FAST
@given(scope_text)
def test_parse_scope_raises_only_scope_error(text: str) -> None:
    try:
        scope = parse_scope(text)
    except ScopeError as exc:
        assert str(exc)
        return
    assert isinstance(scope, Scope)
    assert scope.type in ("repository", "registry")
    if scope.type == "repository":
        assert valid_name(scope.name)
    else:
        assert scope.name == "catalog"


# ------------------------------------------------------------------ routes

path_chars = "abcz09._-/%2eEfF\\\x00?&=:#~ AZ"
segments = st.sampled_from(["manifests", "blobs", "uploads", "tags", "list", "referrers", "_catalog", "..", ".",
                            "", "sha256:" + "a" * 64, "latest", "a", "team", "%2e%2e", "%2F", "UP", "x\\y",
                            "?mount=sha256:" + "a" * 64 + "&from=", "?from=a/b", "?from=..%2Fb"])
route_paths = st.one_of(
    st.text(max_size=80),
    st.sampled_from(["/token", "/token?service=s&scope=repository:a:pull", "/tok%65n", "/token/", "/v2/../token"]),
    st.builds(lambda rest: "/v2/" + rest, st.text(alphabet=path_chars, max_size=80)),
    st.builds(lambda parts: "/v2/" + "/".join(parts), st.lists(segments, max_size=8)),
)
methods = st.one_of(st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "get"]),
                    st.text(max_size=8))


@FAST
@given(methods, route_paths)
def test_parse_route_raises_only_proxy_error(method: str, raw_path: str) -> None:
    try:
        route = parse_route(method, raw_path)
    except ProxyError as exc:
        assert exc.status in (400, 404, 405)
        assert exc.code and exc.message
        assert ("Allow" in exc.headers) is (exc.status == 405)
        return
    assert isinstance(route, Route)
    if route.is_token:  # matched on the raw path: never a decoded or normalised one
        assert raw_path.partition("?")[0] == "/token" and method in ("GET", "POST")
        return
    assert raw_path.startswith("/v2")
    assert method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
    path = raw_path.partition("?")[0]
    assert "%" not in path and "\\" not in path and "\x00" not in path and "//" not in path
    if route.name is None:
        assert route.kind in ("base", "catalog")
    else:
        assert valid_name(route.name)
        assert f"/v2/{route.name}/" in path
    if route.mount_from is not None:
        assert valid_name(route.mount_from)
        assert route.kind == "upload" and method == "POST"


# ------------------------------------------------------------------ files

hash_like = st.one_of(
    st.text(max_size=70),
    st.builds(lambda p, t: p + t, st.sampled_from(["$2y$", "$2y$05$", "$2b$04$", "$2a$", "$apr1$", "$apr1$x$",
                                                   "{SHA}", "$5$", "$5$rounds=1000$", "$6$", "$6$rounds=x$", "$1$"]),
              st.text(alphabet="./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz$=+", max_size=60)),
)
htpasswd_line = st.one_of(st.text(max_size=80), st.builds(lambda u, h: f"{u}:{h}", st.text(max_size=10), hash_like))


@FAST
@given(st.lists(htpasswd_line, max_size=6))
def test_parse_htpasswd_never_raises(lines: list[str]) -> None:
    data = parse_htpasswd("\n".join(lines), "f")
    assert not set(data.hashes) & data.disabled
    for user in data.hashes:
        assert user and ":" not in user


@pytest.mark.filterwarnings("ignore::passlib.exc.PasslibHashWarning")  # odd salts warn; that is fine
@FAST
@given(st.text(max_size=40), hash_like)
def test_check_password_never_raises(password: str, hash_: str) -> None:
    assert check_password(password, hash_) in (True, False)


@FAST
@given(st.lists(st.one_of(st.text(max_size=60), st.builds(lambda g, u: f"{g}: {u}", st.text(max_size=10),
                                                          st.text(max_size=30))), max_size=8))
def test_parse_groups_never_raises(lines: list[str]) -> None:
    data = parse_groups("\n".join(lines), "g")
    for group, members in data.members.items():
        assert group and ":" not in group and not any(c.isspace() for c in group)
        assert all(m and not any(c.isspace() for c in m) for m in members)


# ------------------------------------------------------------------ policy

group_names = st.sampled_from(["pusher", "admins", "ops", "readers", "Pusher", ""])
identities = st.one_of(st.none(), st.builds(Identity, st.text(max_size=8), st.frozensets(group_names, max_size=4)))
rules = st.one_of(
    st.just(Rule(anyone=True)),
    st.just(Rule(users=True)),
    st.builds(Rule.of_groups, st.frozensets(group_names, max_size=3)),
)
repositories = st.one_of(st.none(), st.sampled_from(["a", "team/app"]))


@FAST
@given(identities, rules, rules, rules, st.sampled_from([Action.PUSH, Action.DELETE]), repositories)
def test_writes_only_reach_the_allowed_groups(
    who: Identity | None, pull: Rule, push: Rule, delete: Rule, action: Action, repository: str | None
) -> None:
    access = Access(pull=pull, push=push, delete=delete)
    verdict = decide(access, who, action, repository, "")
    rule = push if action is Action.PUSH else delete
    if verdict is Verdict.ALLOW:
        assert repository is not None  # nothing writes to the catalog
        assert rule.anyone or (who is not None and (rule.users or rule.groups & who.groups))
    else:
        assert verdict is (Verdict.UNAUTHENTICATED if who is None else Verdict.FORBIDDEN)
    granted = access.grant(who, repository or "a", list(Action), "")
    assert (action in granted) is rule.allows(who, "")


# ------------------------------------------------------------------ round trips: what is valid survives junk

MORE = settings(max_examples=300, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

component = st.from_regex(r"[a-z0-9]{1,6}(?:[._-][a-z0-9]{1,4})?", fullmatch=True)
repo_names = st.lists(component, min_size=1, max_size=3).map("/".join)
words = st.from_regex(r"[A-Za-z0-9._-]{1,10}", fullmatch=True)
junk_lines = st.text(alphabet=st.characters(blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"),
                     max_size=40).filter(lambda s: ":" not in s and not s.strip().startswith("#"))


@MORE
@given(repo_names, st.sets(st.sampled_from(["pull", "push", "delete", "*"]), min_size=1))
def test_scope_round_trip(name: str, actions: set[str]) -> None:
    scope = parse_scope(f"repository:{name}:{','.join(sorted(actions))}")
    assert (scope.name, scope.actions) == (name, frozenset(actions))
    assert parse_scope(scope.to_string()) == scope
    joined = parse_scopes([f"{scope.to_string()} registry:catalog:*"])
    assert joined[0] == scope and joined[1].type == "registry"


@MORE
@given(st.text(max_size=40))
def test_scope_with_bad_name_is_refused(name: str) -> None:
    assume(":" not in name and name)
    try:
        scope = parse_scope(f"repository:{name}:pull")
    except ScopeError:
        return
    assert scope.name == name and name == name.lower()


@MORE
@given(st.dictionaries(words.filter(lambda w: ":" not in w), st.sets(words, max_size=4), max_size=5),
       st.lists(junk_lines, max_size=5))
def test_group_file_keeps_valid_lines_among_junk(groups: dict[str, set[str]], junk: list[str]) -> None:
    lines = [f"{g}: {' '.join(sorted(users))}" for g, users in groups.items()]
    text = "\n".join(x for pair in zip(lines, junk + [""] * len(lines), strict=False) for x in pair)
    data = parse_groups(text, "g")
    for group, users in groups.items():
        assert users <= data.members.get(group, frozenset())


GOOD_HASH = bcrypt.hashpw(b"x", bcrypt.gensalt(4)).decode()  # a real hash; the password does not matter


@MORE
@given(st.lists(words, min_size=1, max_size=4, unique=True), st.lists(junk_lines, max_size=4))
def test_htpasswd_keeps_valid_users_among_junk(users: list[str], junk: list[str]) -> None:
    lines = [f"{u}:{GOOD_HASH}" for u in users]
    data = parse_htpasswd("\n".join(junk + lines), "h")
    assert set(users) <= set(data.hashes)


@MORE
@given(st.text(max_size=20).filter(lambda u: ":" not in u), st.text(max_size=30))
def test_basic_round_trip(user: str, password: str) -> None:
    header = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    assert parse_authorization([header]) == Basic(user, password)
    assert isinstance(parse_authorization([header, header]), Invalid)
    assert isinstance(parse_authorization(["Basic " + base64.b64encode(user.encode() + b"\xff:x").decode()]),
                      Invalid)
