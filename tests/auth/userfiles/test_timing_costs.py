"""Every failed check costs what the slowest hash in the file costs (issue 11, item 6).

Measured before the fix: a wrong password for a cost-12 user took 382 ms and an
unknown user 5 ms, because the dummy had the file's most common cost (5). Here
cost is counted, not timed: each bcrypt check at cost ``c`` is ``2**c`` units
of work (that is bcrypt's definition), so the assertions hold on any machine.
The wall-clock version through the real proxy is
tests/integration/test_abuse_timing.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from passlib.hash import apr_md5_crypt, ldap_sha1, sha512_crypt

from auth.userfiles import store as store_module
from auth.userfiles.hashing import (
    DUMMY_HASHES,
    DUMMY_PASSWORD,
    FAST,
    MAX_COST,
    MIN_COST,
    bcrypt_cost,
    check_password,
    describe_hash,
    equivalent_cost,
    odd_hashes,
    padding_costs,
)
from auth.userfiles.store import UserStore
from tests.auth.userfiles.apache import FakeClock

D = DUMMY_HASHES  # a valid $2y$ hash of DUMMY_PASSWORD at every cost: stands in for users' hashes


def work(hashes: list[str]) -> int:
    return sum(2 ** bcrypt_cost(h) for h in hashes)  # type: ignore[operator]


@pytest.mark.parametrize("target", range(MIN_COST, MAX_COST + 1))
@pytest.mark.parametrize("own", [FAST, *range(MIN_COST, MAX_COST + 1)])
def test_padding_makes_up_the_difference_to_the_target(own: int, target: int) -> None:
    padding = padding_costs(own, target)
    total = (2 ** own if own >= MIN_COST else 0) + sum(2 ** c for c in padding)
    if own >= target:
        assert padding == ()
    else:
        assert 2 ** target <= total <= 2 ** target * 1.04, (own, target, padding)
        assert len(padding) <= 4 and all(MIN_COST <= c <= target for c in padding)


def test_padding_examples() -> None:
    assert padding_costs(5, 12) == (12,)  # cost 5 is 1/128 of cost 12: one dummy, 0.8 % over
    assert padding_costs(11, 12) == (11,)  # 2**11 + 2**11 == 2**12 exactly
    assert padding_costs(9, 12) == (9, 10, 11)
    assert padding_costs(FAST, 12) == (12,)  # unknown users, apr1, {SHA}, DES
    assert padding_costs(12, 12) == padding_costs(14, 12) == ()


def test_equivalent_cost_of_each_scheme() -> None:
    assert equivalent_cost(D[12]) == 12
    assert equivalent_cost(D[4].replace("$04$", "$20$", 1)) == 20  # other tools' costs are taken as they are
    assert equivalent_cost(sha512_crypt.using(rounds=5000).hash("x")) == 6  # Apache's htpasswd -5 default
    assert equivalent_cost(sha512_crypt.using(rounds=800_000).hash("x")) == 13
    assert equivalent_cost(apr_md5_crypt.hash("x")) == FAST
    assert equivalent_cost(ldap_sha1.hash("x")) == FAST
    assert describe_hash(D[5]) == "bcrypt cost 5"
    assert describe_hash(apr_md5_crypt.hash("x")) == "apr1 (MD5)"
    assert describe_hash(sha512_crypt.using(rounds=5000).hash("x")) == "SHA-512 crypt (5000 rounds)"


@pytest.fixture
def mixed(tmp_path: Path) -> Path:
    """ann and bob at cost 12, carl at 11, dora at 9, mark at 5, olga apr1: every password is DUMMY_PASSWORD."""
    path = tmp_path / "users.htpasswd"
    olga = apr_md5_crypt.hash(DUMMY_PASSWORD)
    path.write_text(f"ann:{D[12]}\nbob:{D[12]}\ncarl:{D[11]}\ndora:{D[9]}\nmark:{D[5]}\nolga:{olga}\n")
    return path


def test_unknown_users_get_the_dummy_of_the_highest_cost_not_the_most_common(tmp_path: Path) -> None:
    path = tmp_path / "users.htpasswd"
    path.write_text("".join(f"u{i}:{D[5]}\n" for i in range(5)) + f"slow:{D[12]}\n")
    snap = UserStore(path, None, clock=FakeClock()).snapshot()
    assert snap.dummy_hash == D[12]
    assert snap.padding("nobody") == (D[12],)
    assert snap.padding("u0") == (D[12],) and snap.padding("slow") == ()


def test_padding_per_user(mixed: Path) -> None:
    snap = UserStore(mixed, None, clock=FakeClock()).snapshot()
    assert snap.padding("ann") == ()
    assert snap.padding("carl") == (D[11],)
    assert snap.padding("dora") == (D[9], D[10], D[11])
    assert snap.padding("mark") == (D[12],)
    assert snap.padding("olga") == (D[12],)
    assert snap.padding("ghost") == (D[12],)


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every hash ``UserStore.verify`` checks a password against, in order."""
    checked: list[str] = []

    def spy(password: str, hash_: str) -> bool:
        checked.append(hash_)
        return check_password(password, hash_)

    monkeypatch.setattr(store_module, "check_password", spy)
    return checked


@pytest.mark.parametrize("user", ["ann", "carl", "dora", "mark", "ghost"])
def test_every_failed_bcrypt_check_costs_the_slowest_hash(mixed: Path, spied: list[str], user: str) -> None:
    store = UserStore(mixed, None, cache_ttl=0, clock=FakeClock())
    assert store.verify(user, "wrong password") is None
    assert 2 ** 12 <= work(spied) <= 2 ** 12 * 1.04, (user, spied)


def test_a_fast_scheme_user_is_padded_to_the_slowest_too(mixed: Path, spied: list[str]) -> None:
    store = UserStore(mixed, None, cache_ttl=0, clock=FakeClock())
    assert store.verify("olga", "wrong password") is None
    assert spied[0].startswith("$apr1$") and spied[1:] == [D[12]]


def test_success_pays_no_padding_and_the_dummy_password_opens_nothing(mixed: Path, spied: list[str]) -> None:
    store = UserStore(mixed, None, cache_ttl=0, clock=FakeClock())
    assert store.verify("mark", DUMMY_PASSWORD) is not None
    assert spied == [D[5]]  # a right password is not padded: only failures must look alike
    spied.clear()
    assert store.verify("ghost", DUMMY_PASSWORD) is None  # the dummy matches, the result is ignored
    assert spied == [D[12]]


def test_a_cost_above_17_pads_to_17(tmp_path: Path) -> None:
    path = tmp_path / "users.htpasswd"
    path.write_text(f"huge:{D[4].replace('$04$', '$20$', 1)}\ncheap:{D[4]}\n")
    snap = UserStore(path, None, clock=FakeClock()).snapshot()
    assert snap.dummy_hash == D[17] and snap.padding("cheap") == (D[17],) and snap.padding("huge") == ()


# ------------------------------------------------------------------ odd_hashes


def test_odd_hashes_names_the_cheap_user_and_the_command() -> None:
    lines = odd_hashes({"ann": D[12], "bob": D[12], "mark": D[5]})
    assert lines == ["mark: bcrypt cost 5, others 12; run `registry-auth-proxy user passwd mark` to rehash"]


def test_odd_hashes_passes_the_cost_of_the_rest_when_it_is_not_the_default() -> None:
    lines = odd_hashes({"ann": D[10], "bob": D[10], "olga": apr_md5_crypt.hash("x")})
    assert lines == ["olga: apr1 (MD5), others bcrypt cost 10; run `registry-auth-proxy user passwd olga --cost 10`"
                     " to rehash"]


def test_odd_hashes_a_single_costly_user_pads_everyone() -> None:
    [line] = odd_hashes({"ann": D[5], "bob": D[5], "zed": D[14]})
    assert line.startswith("zed: bcrypt cost 14, others 5; every failed login is padded to it")
    assert "`registry-auth-proxy user passwd NAME --cost 14`" in line
    assert "or zed with `registry-auth-proxy user passwd zed --cost 5`" in line


def test_odd_hashes_quiet_when_all_alike_and_capped_when_many_differ() -> None:
    assert odd_hashes({"ann": D[12], "bob": D[12]}) == odd_hashes({}) == []
    many = {f"u{i:02d}": D[5] for i in range(30)} | {f"v{i:02d}": D[12] for i in range(40)}
    lines = odd_hashes(many, limit=10)
    assert len(lines) == 11 and lines[-1] == "... and 20 more users whose hash differs from the rest (bcrypt cost 12)"
    assert odd_hashes({"a": D[5], "b": D[12]})[0].startswith("a: bcrypt cost 5, others 12")  # tie: the slowest wins
