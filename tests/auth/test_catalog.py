"""The filtered catalog's paging, sans I/O: driven against a fake backend that pages like distribution 2.8.

The property tests are the contract: whatever the names, the rules and the
page size, a client that follows ``Link`` sees every name it may pull exactly
once, in the backend's order, never a hidden one, and always gets to the end.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auth.access import Access, Identity, RepositoryRule, Rule
from auth.catalog import (
    CURSOR_MARK,
    DEFAULT_N,
    CatalogAnswer,
    CatalogWalk,
    CursorSeal,
    PageError,
    Paging,
    catalog_path,
    link_header,
    parse_page,
    parse_paging,
)
from auth.decision import Origin, Policy
from auth.errors import ProxyError

SEAL = CursorSeal.from_secret(b"k" * 48)


def order(name: str) -> str:
    """Distribution's order: component-wise, so ``a/b`` sorts before ``a-b`` (checked against 2.8.2)."""
    return name.replace("/", "\x00")


@dataclass
class FakeBackend:
    """Pages a sorted catalog as distribution does: names after ``last``, ``n`` at most, Link when more."""

    names: list[str]
    link_when_full: bool = False  # 2.7 also links a full last page (the next one is then empty)
    default_n: int = DEFAULT_N
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.names = sorted(set(self.names), key=order)

    def get(self, path: str) -> tuple[list[str], bool]:
        self.requests.append(path)
        parts = urlsplit(path)
        assert parts.path == "/v2/_catalog"
        query = dict(parse_qsl(parts.query))
        n = int(query.get("n", self.default_n))
        last = query.get("last")
        after = [x for x in self.names if last is None or order(x) > order(last)]
        page = after[:n]
        more = len(page) == n and (self.link_when_full or len(after) > n) and n > 0
        return page, more


@dataclass
class Client:
    """Follows ``Link`` the way the registry CLI does; records every answer."""

    backend: FakeBackend
    visible: Callable[[str], bool]
    max_pages: int = 10
    max_scanned: int = 10_000
    answers: list[CatalogAnswer] = field(default_factory=list)
    backend_calls: list[int] = field(default_factory=list)

    def request(self, paging: Paging) -> CatalogAnswer:
        walk = CatalogWalk(paging, self.visible, self.max_pages, self.max_scanned)
        calls = 0
        while (path := walk.query()) is not None:
            calls += 1
            walk.feed(*self.backend.get(path))
        self.backend_calls.append(calls)
        answer = walk.answer()
        self.answers.append(answer)
        return answer

    def follow(self, n: str | None, last: str | None = None, limit: int = 10_000) -> list[str]:
        """Every name listed, following each ``Link`` as written; no Link shows a hidden name in clear."""
        seen: list[str] = []
        paging = parse_paging(n, last, SEAL)
        for _ in range(limit):
            answer = self.request(paging)
            seen += answer.repositories
            if answer.next_last is None:
                return seen
            link = answer.link(paging.n, SEAL)
            assert link is not None
            target = link.split(">")[0].lstrip("<")
            query = dict(parse_qsl(urlsplit(target).query))
            if query["last"].startswith(CURSOR_MARK):
                assert answer.next_hidden and SEAL.open(query["last"]) == answer.next_last
            else:
                assert self.visible(query["last"]) and query["last"] == answer.next_last
            paging = parse_paging(query["n"], query["last"], SEAL)
        raise AssertionError("the client never reached the end")


COMPONENT = st.sampled_from(["a", "b", "a-b", "a.b", "ab", "z", "a_b", "0"])
NAME = st.lists(COMPONENT, min_size=1, max_size=3).map("/".join)


@settings(max_examples=400, deadline=None)
@given(names=st.lists(NAME, max_size=40), hidden=st.sets(NAME), n=st.integers(1, 12),
       max_pages=st.integers(1, 4), link_when_full=st.booleans())
def test_following_links_lists_every_visible_name_once(names: list[str], hidden: set[str], n: int,
                                                       max_pages: int, link_when_full: bool) -> None:
    backend = FakeBackend(names, link_when_full)
    client = Client(backend, lambda name: name not in hidden, max_pages=max_pages)
    listed = client.follow(str(n))
    assert listed == [x for x in backend.names if x not in hidden]
    assert all(len(a.repositories) <= n for a in client.answers)
    assert all(calls <= max_pages for calls in client.backend_calls)
    lasts = [a.next_last for a in client.answers if a.next_last is not None]
    assert all(order(a) < order(b) for a, b in itertools.pairwise(lasts))  # last always advances


@settings(max_examples=200, deadline=None)
@given(names=st.lists(NAME, max_size=30), hidden=st.sets(NAME), n=st.integers(1, 8), start=NAME)
def test_resuming_after_any_name_lists_what_follows_it(names: list[str], hidden: set[str], n: int,
                                                        start: str) -> None:
    """``last`` need not be a name the catalog holds (it may have been deleted meanwhile)."""
    backend = FakeBackend(names)
    listed = Client(backend, lambda name: name not in hidden, max_pages=2).follow(str(n), start)
    assert listed == [x for x in backend.names if x not in hidden and order(x) > order(start)]


# An oracle for the globs below, written out by hand (the policy compiles them to one regex).
GLOBS: dict[str, Callable[[str], bool]] = {
    "a/**": lambda x: x == "a" or x.startswith("a/"),
    "a-b": lambda x: x == "a-b",
    "b/*": lambda x: x.startswith("b/") and x.count("/") == 1,
    "z/**": lambda x: x == "z" or x.startswith("z/"),
    "**/0": lambda x: x.split("/")[-1] == "0",
    "a*": lambda x: "/" not in x and x.startswith("a"),
}
WHO = {"users": Rule(users=True), "admins": Rule.of_groups(["admins"]), "anyone": Rule(anyone=True)}


@settings(max_examples=150, deadline=None)
@given(names=st.lists(NAME, max_size=30), n=st.integers(1, 8),
       rules=st.lists(st.tuples(st.sampled_from(sorted(GLOBS)), st.sampled_from(sorted(WHO))), max_size=3))
def test_filtering_is_the_policy_pull_check(names: list[str], n: int, rules: list[tuple[str, str]]) -> None:
    access = Access(repositories=tuple(RepositoryRule(match=m, pull=WHO[w]) for m, w in rules))
    policy = Policy(access=access, mode="bearer", basic_realm="r", service="s", token_path="/token")
    origin = Origin("https", "registry.example", "192.0.2.1")
    backend = FakeBackend(names)
    for who in (None, Identity("reader"), Identity("mark", frozenset({"admins"}))):
        def oracle(name: str, who: Identity | None = who) -> bool:
            first = next((w for m, w in rules if GLOBS[m](name)), "anyone")  # first matching rule wins
            return first == "anyone" or (who is not None and (first == "users" or "admins" in who.groups))

        listed = Client(backend, lambda name, who=who: policy.may_pull(who, name, origin)).follow(str(n))
        assert listed == [x for x in backend.names if oracle(x)]


def test_a_wholly_hidden_stretch_ends_at_the_bound_with_a_link_after_the_last_name_scanned() -> None:
    backend = FakeBackend([f"secret/{i:02d}" for i in range(50)] + ["zz/public"])
    client = Client(backend, lambda name: not name.startswith("secret/"), max_pages=3)
    first = client.request(parse_paging("5", None))
    assert first == CatalogAnswer([], "secret/14", True)  # 3 pages of 5 scanned, nothing visible: resume there
    link = first.link(5, SEAL)
    assert link is not None and "secret" not in link
    last = dict(parse_qsl(urlsplit(link.split(">")[0].lstrip("<")).query))["last"]
    assert last.startswith(CURSOR_MARK) and SEAL.open(last) == "secret/14"
    with pytest.raises(ValueError):
        first.link(5)  # a hidden resume point is never written without a seal
    assert backend.requests == ["/v2/_catalog?n=5", "/v2/_catalog?last=secret%2F04&n=5",
                                "/v2/_catalog?last=secret%2F09&n=5"]
    assert client.follow("5") == ["zz/public"]


def test_the_scanned_budget_also_bounds_a_request() -> None:
    backend = FakeBackend([f"h{i:03d}" for i in range(100)])
    answer = Client(backend, lambda name: False, max_pages=10, max_scanned=25).request(parse_paging("10", None))
    assert answer == CatalogAnswer([], "h029", True)  # checked after each page: 3 pages of 10
    assert len(backend.requests) == 3


def test_a_full_page_links_after_its_last_visible_name_and_drops_the_rest_of_the_backend_page() -> None:
    backend = FakeBackend(["a", "b", "c", "d", "e"])
    answer = Client(backend, lambda name: name != "b").request(parse_paging("2", None))
    assert answer == CatalogAnswer(["a", "c"], "c")
    assert backend.requests == ["/v2/_catalog?n=2", "/v2/_catalog?last=b&n=2"]


def test_the_end_has_no_link_even_when_the_last_page_is_exactly_full() -> None:
    backend = FakeBackend(["a", "b"], link_when_full=True)
    client = Client(backend, lambda name: True)
    assert client.request(parse_paging("2", None)) == CatalogAnswer(["a", "b"], "b")  # the backend said more
    assert client.request(parse_paging("2", "b")) == CatalogAnswer([], None)
    assert Client(FakeBackend(["a", "b"]), lambda name: True).request(parse_paging("2", None)) \
        == CatalogAnswer(["a", "b"], None)


def test_n_zero_is_an_empty_list_without_asking_the_backend() -> None:
    walk = CatalogWalk(parse_paging("0", None), lambda name: True)
    assert walk.query() is None
    assert walk.answer() == CatalogAnswer([], None) and walk.answer().link(0) is None


def test_a_backend_that_does_not_advance_ends_the_walk() -> None:
    walk = CatalogWalk(parse_paging("5", "a"), lambda name: False)
    walk.feed(["a"], True)  # says "more" but hands back the cursor itself
    assert walk.answer() == CatalogAnswer([], None)
    walk = CatalogWalk(parse_paging("5", None), lambda name: False)
    walk.feed([], True)
    assert walk.answer() == CatalogAnswer([], None)
    with pytest.raises(RuntimeError):
        walk.feed(["b"], False)


def test_answer_before_the_walk_is_done_is_a_programming_error() -> None:
    with pytest.raises(RuntimeError):
        CatalogWalk(parse_paging(None, None), lambda name: True).answer()


@pytest.mark.parametrize(
    ("n", "expected"),
    [(None, Paging(DEFAULT_N, None, False)), ("", Paging(DEFAULT_N, None, False)),
     ("abc", Paging(DEFAULT_N, None, False)), ("-1", Paging(DEFAULT_N, None, False)),
     (" 3", Paging(DEFAULT_N, None, False)), ("99999999999999999999", Paging(DEFAULT_N, None, False)),
     ("0", Paging(0, None, True)), ("+3", Paging(3, None, True)), ("007", Paging(7, None, True)),
     ("1001", Paging(1001, None, True))],  # over maxentries: the backend answers its 400
)
def test_n_is_read_as_distribution_reads_it(n: str | None, expected: Paging) -> None:
    assert parse_paging(n, None) == expected


def test_an_empty_last_is_no_last() -> None:
    assert parse_paging("2", "").last is None and parse_paging("2", "a/b").last == "a/b"


def test_paths_and_links_are_encoded_as_distribution_writes_them() -> None:
    assert catalog_path(None, None) == "/v2/_catalog"
    assert catalog_path(3, None) == "/v2/_catalog?n=3"
    assert catalog_path(None, "a/b") == "/v2/_catalog?last=a%2Fb"
    assert link_header(2, "a&b=c/d e") == '</v2/_catalog?last=a%26b%3Dc%2Fd+e&n=2>; rel="next"'


def test_the_first_backend_request_carries_only_what_the_client_gave() -> None:
    assert CatalogWalk(parse_paging(None, None), lambda name: True).query() == "/v2/_catalog"
    assert CatalogWalk(parse_paging("x", "q"), lambda name: True).query() == "/v2/_catalog?last=q"
    assert CatalogWalk(parse_paging("1000", None), lambda name: True).query() == "/v2/_catalog?n=1000"


@pytest.mark.parametrize(
    ("body", "names"),
    [(b'{"repositories":["a","b/c"]}\n', ["a", "b/c"]), (b'{"repositories":[]}', []),
     (b'{"repositories":null}', [])],
)
def test_a_backend_page_is_read(body: bytes, names: list[str]) -> None:
    assert parse_page(body) == names


@pytest.mark.parametrize("body", [b"", b"<html>", b"[]", b"{}", b'{"repositories":"a"}', b'{"repositories":[1]}',
                                  b'{"repositories":[""]}', b"\xff\xfe"])
def test_a_page_that_is_not_a_catalog_is_refused_whole(body: bytes) -> None:
    with pytest.raises(PageError):
        parse_page(body)


def test_a_bound_that_ends_on_a_visible_name_links_it_in_clear() -> None:
    backend = FakeBackend(["a1", "a2", "a3", "b4", "c5", "c6"])
    answer = Client(backend, lambda name: name.startswith("b"), max_pages=2).request(parse_paging("2", None))
    assert answer == CatalogAnswer(["b4"], "b4", False)  # fewer than n, but the bound: resume after b4
    assert answer.link(2, SEAL) == '</v2/_catalog?last=b4&n=2>; rel="next"'


def test_a_sealed_cursor_opens_only_with_its_key_and_intact() -> None:
    one, two = SEAL.seal("vault/secret"), SEAL.seal("vault/secret")
    assert one != two and "vault" not in one and one.startswith(CURSOR_MARK)
    assert SEAL.open(one) == SEAL.open(two) == "vault/secret"
    assert CursorSeal.from_secret(b"x" * 48).open(one) is None
    body = one[1:]
    flipped = body[:30] + ("A" if body[30] != "A" else "B") + body[31:]
    for bad in (CURSOR_MARK + flipped, one[:-2], "~", "~!!!", "~" + "A" * 2000, "vault/secret", one + "x"):
        assert SEAL.open(bad) is None, bad


@given(name=st.text(min_size=1, max_size=300))
def test_any_name_survives_sealing(name: str) -> None:
    assert SEAL.open(SEAL.seal(name)) == name


def test_a_cursor_that_cannot_be_opened_is_a_400_not_a_restart() -> None:
    stale = CursorSeal.from_secret(b"old key " * 6).seal("vault/secret")
    for seal in (SEAL, None):
        with pytest.raises(ProxyError) as caught:
            parse_paging("5", stale, seal)
        assert caught.value.status == 400 and "from the start" in caught.value.message
    assert parse_paging("5", SEAL.seal("vault/secret"), SEAL).last == "vault/secret"
