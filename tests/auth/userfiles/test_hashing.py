"""Every hash format Apache's htpasswd writes: passlib (libpass) directly, then our
``auth.userfiles.hashing`` on files Apache made, and the constant dummy hashes.

The fixture was written by Apache itself (see tests/fixtures/README.md), so these
tests pin what a reader of real-world htpasswd files must accept and reject. The
tables live in ``tests/auth/userfiles/apache.py`` so the htpasswd reader's tests
can reuse them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from passlib.context import CryptContext

from auth.userfiles.hashing import (
    BCRYPT_MAX_BYTES,
    DEFAULT_COST,
    DUMMY_HASHES,
    DUMMY_PASSWORD,
    MAX_COST,
    MIN_COST,
    bcrypt_cost,
    check_password,
    dummy_hash,
    scheme_of,
)
from auth.userfiles.htpasswd import parse_htpasswd
from auth.userfiles.store import UserStore
from tests.auth.userfiles.apache import (
    CORRUPT_USERS,
    FIXTURE,
    FIXTURE_USERS,
    FORMATS,
    LONG_BCRYPT_USERS,
    MALFORMED_LINES,
    UNSUPPORTED_USERS,
    FakeClock,
    apache,
    apache_verifies,
)

SCHEMES = ["bcrypt", "apr_md5_crypt", "ldap_sha1", "sha256_crypt", "sha512_crypt", "des_crypt"]
"""Everything Apache on Linux verifies; plaintext is deliberately absent (Apache rejects it there)."""


def fixture_entries() -> dict[str, str]:
    """user -> hash for every ``user:hash`` line (comments, blanks, colon-less lines skipped)."""
    entries: dict[str, str] = {}
    for line in FIXTURE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            user, hashed = line.split(":", 1)
            entries.setdefault(user, hashed)
    return entries


@pytest.fixture(scope="module")
def ctx() -> CryptContext:
    return CryptContext(schemes=SCHEMES)


@pytest.fixture(scope="module")
def apache_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fixture minus colon-less lines: Apache's htpasswd refuses to read files with them."""
    lines = [line for line in FIXTURE.read_text().splitlines() if line not in MALFORMED_LINES]
    copy = tmp_path_factory.mktemp("apache") / "apache.htpasswd"
    copy.write_text("\n".join(lines) + "\n")
    return copy


def wrong(password: str) -> str:
    """A wrong password that differs in the first characters (DES crypt only reads 8)."""
    return password.upper()


def test_fixture_holds_exactly_the_documented_entries() -> None:
    lines = FIXTURE.read_text().splitlines()
    users = [u for u, _, _ in FIXTURE_USERS + LONG_BCRYPT_USERS] + [u for u, _ in UNSUPPORTED_USERS]
    assert sorted(fixture_entries()) == sorted(users + CORRUPT_USERS)
    assert all(line in lines for line in MALFORMED_LINES)
    assert any(line.startswith("#") for line in lines) and "" in lines


@pytest.mark.parametrize(("user", "password", "scheme"), FIXTURE_USERS + LONG_BCRYPT_USERS)
def test_each_apache_hash_is_identified_as_its_scheme(ctx: CryptContext, user: str, password: str, scheme: str) -> None:
    assert ctx.identify(fixture_entries()[user]) == scheme


@pytest.mark.parametrize(("user", "password", "scheme"), FIXTURE_USERS)
def test_each_apache_hash_verifies_right_password_only(
    ctx: CryptContext, user: str, password: str, scheme: str
) -> None:
    hashed = fixture_entries()[user]
    assert ctx.verify(password, hashed) is True
    assert ctx.verify(wrong(password), hashed) is False
    assert ctx.verify("", hashed) is False


@pytest.mark.parametrize(("user", "password", "scheme"), FIXTURE_USERS + LONG_BCRYPT_USERS)
def test_apache_itself_agrees_with_the_documented_passwords(
    apache_copy: Path, user: str, password: str, scheme: str
) -> None:
    """Guards the table: Apache's own verifier accepts each documented password."""
    assert apache_verifies(apache_copy, user, password)
    assert not apache_verifies(apache_copy, user, wrong(password))


def test_plaintext_entry_is_not_identified_and_apache_rejects_it_too(ctx: CryptContext, apache_copy: Path) -> None:
    for user, password in UNSUPPORTED_USERS:
        hashed = fixture_entries()[user]
        assert hashed == password  # really stored in the clear
        assert ctx.identify(hashed, required=False) is None
        with pytest.raises(ValueError):  # passlib's UnknownHashError is a ValueError
            ctx.verify(password, hashed)
        assert not apache_verifies(apache_copy, user, password)


def test_corrupt_bcrypt_entry_is_identified_but_cannot_verify(ctx: CryptContext) -> None:
    """Looks like bcrypt by prefix, so a reader must catch ValueError from verify()."""
    for user in CORRUPT_USERS:
        hashed = fixture_entries()[user]
        assert ctx.identify(hashed) == "bcrypt"
        with pytest.raises(ValueError):
            ctx.verify("anything", hashed)


def test_des_crypt_only_reads_eight_characters_in_apache_and_passlib(ctx: CryptContext, apache_copy: Path) -> None:
    """Why des_crypt entries are dangerous: 'pw-crypt' + anything is accepted by both."""
    hashed = fixture_entries()["crypt"]
    assert ctx.verify("pw-crypt-and-more", hashed)
    assert apache_verifies(apache_copy, "crypt", "pw-crypt-and-more")


def test_long_bcrypt_password_counts_only_72_bytes_in_apache(apache_copy: Path) -> None:
    for user, password, _ in LONG_BCRYPT_USERS:
        assert len(password.encode()) > 72
        assert apache_verifies(apache_copy, user, password)
        assert apache_verifies(apache_copy, user, password[:72])
        assert apache_verifies(apache_copy, user, password[:72] + "different tail")
        assert not apache_verifies(apache_copy, user, password[:71])


def test_libpass_bcrypt_refuses_over_72_bytes_so_readers_must_truncate(ctx: CryptContext) -> None:
    """libpass 1.9.4 + bcrypt 5.0 raise instead of truncating like Apache does.

    So a reader must cut bcrypt secrets to 72 bytes before verify(); with that,
    it accepts exactly what Apache accepts. If libpass starts truncating itself,
    this test fails and the workaround can go.
    """
    for user, password, _ in LONG_BCRYPT_USERS:
        hashed = fixture_entries()[user]
        with pytest.raises(ValueError, match="72 bytes"):
            ctx.verify(password, hashed)
        secret = password.encode()[:72]
        assert ctx.verify(secret, hashed) is True
        assert ctx.verify((password[:72] + "different tail").encode()[:72], hashed) is True
        assert ctx.verify(password.encode()[:71], hashed) is False


# ------------------------------------------------------------------ auth.userfiles.hashing on Apache's files


def test_our_context_has_exactly_the_schemes_apache_verifies() -> None:
    from auth.userfiles import hashing

    assert hashing.SCHEMES == SCHEMES


@pytest.mark.parametrize(("flags", "prefix", "scheme"), FORMATS, ids=[" ".join(f[0]) for f in FORMATS])
def test_every_apache_format_verifies(tmp_path: Path, flags: tuple[str, ...], prefix: str, scheme: str) -> None:
    path = tmp_path / "users.htpasswd"
    line = apache(path, "alice", "pw-alice1", *flags)
    hash_ = line.split(":", 1)[1]
    assert hash_.startswith(prefix)
    assert scheme_of(hash_) == scheme
    data = parse_htpasswd(path.read_text(), str(path))
    assert data.hashes == {"alice": hash_}
    assert data.warnings == () and data.disabled == frozenset()
    assert check_password("pw-alice1", hash_)
    assert not check_password("wrong-pw", hash_)
    assert not check_password("", hash_)
    store = UserStore(path, None, clock=FakeClock())
    assert store.verify("alice", "pw-alice1") is not None
    assert store.verify("alice", "wrong") is None
    assert store.verify("Alice", "pw-alice1") is None


def test_bcrypt_password_over_72_bytes_behaves_like_apache(tmp_path: Path) -> None:
    path = tmp_path / "users.htpasswd"
    password = "pw-long-" + "x" * 92  # 100 bytes
    apache(path, "long", password, "-B", "-C", "4")
    same72 = password[:72] + "DIFFERENT TAIL"
    assert apache_verifies(path, "long", password)
    assert apache_verifies(path, "long", password[:72])
    assert apache_verifies(path, "long", same72)
    assert not apache_verifies(path, "long", password[:71])
    store = UserStore(path, None, cache_ttl=0, clock=FakeClock())
    assert store.verify("long", password) is not None
    assert store.verify("long", password[:72]) is not None
    assert store.verify("long", same72) is not None
    assert store.verify("long", password[:71]) is None
    assert store.verify("long", "y" * 200) is None


def test_multibyte_password_cut_inside_a_character(tmp_path: Path) -> None:
    path = tmp_path / "users.htpasswd"
    password = "p" * 71 + "é" + "tail"  # byte 72 is the first byte of 'é'
    apache(path, "mb", password, "-B", "-C", "4")
    other = "p" * 71 + "è"  # same first byte (0xc3), so the first 72 bytes are equal
    assert apache_verifies(path, "mb", other)
    store = UserStore(path, None, cache_ttl=0, clock=FakeClock())
    assert store.verify("mb", password) is not None
    assert store.verify("mb", other) is not None
    assert not apache_verifies(path, "mb", "p" * 72)
    assert store.verify("mb", "p" * 72) is None


def test_bcrypt_cost_reads_the_cost_field_only_of_bcrypt_hashes() -> None:
    assert bcrypt_cost("$2y$12$" + "a" * 53) == 12
    assert bcrypt_cost("$2b$04$x") == 4
    assert bcrypt_cost("$apr1$salt$hash") is None
    assert bcrypt_cost("$2y$") is None
    assert bcrypt_cost("$2y$xx$abc") is None


def test_constants_match_apache() -> None:
    assert (MIN_COST, MAX_COST, DEFAULT_COST, BCRYPT_MAX_BYTES) == (4, 17, 12, 72)


# ------------------------------------------------------------------ constant dummy hashes

_BCRYPT_SHAPE = re.compile(r"\$2y\$(\d\d)\$[./A-Za-z0-9]{53}")


def test_there_is_a_dummy_hash_for_every_cost_apache_can_write() -> None:
    assert sorted(DUMMY_HASHES) == list(range(MIN_COST, MAX_COST + 1))


@pytest.mark.parametrize("cost", sorted(DUMMY_HASHES))
def test_each_dummy_hash_is_a_valid_2y_hash_of_its_own_cost(cost: int) -> None:
    hash_ = DUMMY_HASHES[cost]
    match = _BCRYPT_SHAPE.fullmatch(hash_)
    assert match is not None, hash_
    assert int(match.group(1)) == cost
    assert bcrypt_cost(hash_) == cost
    assert scheme_of(hash_) == "bcrypt"  # passlib parses it (salt and checksum well-formed)


@pytest.mark.parametrize("cost", range(4, 11))
def test_dummy_hashes_up_to_cost_10_check_the_dummy_password(cost: int) -> None:
    """Costs 11..17 are not checked here: together they take minutes."""
    assert check_password(DUMMY_PASSWORD, DUMMY_HASHES[cost])
    assert not check_password(DUMMY_PASSWORD + "x", DUMMY_HASHES[cost])


def test_dummy_hashes_are_all_different() -> None:
    assert len(set(DUMMY_HASHES.values())) == len(DUMMY_HASHES)


@pytest.mark.parametrize(("asked", "given"), [(1, 4), (4, 4), (5, 5), (12, 12), (17, 17), (18, 17), (31, 17)])
def test_dummy_hash_is_clamped_to_the_costs_apache_writes(asked: int, given: int) -> None:
    assert dummy_hash(asked) == DUMMY_HASHES[given]
