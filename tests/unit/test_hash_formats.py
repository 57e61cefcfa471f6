"""Every hash format Apache's htpasswd writes, checked with passlib (libpass) directly.

The fixture was written by Apache itself (see tests/fixtures/README.md), so these
tests pin what a reader of real-world htpasswd files must accept and reject. The
tables are module level so the htpasswd reader's tests can reuse them.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from passlib.context import CryptContext

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "apache.htpasswd"
HTPASSWD_BIN = "/usr/bin/htpasswd"

SCHEMES = ["bcrypt", "apr_md5_crypt", "ldap_sha1", "sha256_crypt", "sha512_crypt", "des_crypt"]
"""Everything Apache on Linux verifies; plaintext is deliberately absent (Apache rejects it there)."""

LONG_PASSWORD = "pw-bcryptlong-" + "x" * 86  # 100 bytes

FIXTURE_USERS: list[tuple[str, str, str]] = [
    ("bcrypt", "pw-bcrypt", "bcrypt"),
    ("bcrypt4", "pw-bcrypt4", "bcrypt"),
    ("apr1", "pw-apr1", "apr_md5_crypt"),
    ("sha1", "pw-sha1", "ldap_sha1"),
    ("crypt", "pw-crypt", "des_crypt"),
    ("sha256", "pw-sha256", "sha256_crypt"),
    ("sha512", "pw-sha512", "sha512_crypt"),
]
"""(user, password, passlib scheme) for every entry that must verify."""

LONG_BCRYPT_USERS: list[tuple[str, str, str]] = [("bcryptlong", LONG_PASSWORD, "bcrypt")]
"""A bcrypt entry whose password is over 72 bytes: only the first 72 bytes count."""

UNSUPPORTED_USERS: list[tuple[str, str]] = [("plain", "pw-plain")]
"""Plaintext entries: Apache on Linux never accepts them, so neither may we."""

CORRUPT_USERS: list[str] = ["broken"]
"""Entries with a malformed hash: verification fails (ValueError), other users unaffected."""

MALFORMED_LINES: list[str] = ["this line has no colon"]
"""Lines that are no entry at all."""


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
    assert _apache_verifies(apache_copy, user, password)
    assert not _apache_verifies(apache_copy, user, wrong(password))


def test_plaintext_entry_is_not_identified_and_apache_rejects_it_too(ctx: CryptContext, apache_copy: Path) -> None:
    for user, password in UNSUPPORTED_USERS:
        hashed = fixture_entries()[user]
        assert hashed == password  # really stored in the clear
        assert ctx.identify(hashed, required=False) is None
        with pytest.raises(ValueError):  # passlib's UnknownHashError is a ValueError
            ctx.verify(password, hashed)
        assert not _apache_verifies(apache_copy, user, password)


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
    assert _apache_verifies(apache_copy, "crypt", "pw-crypt-and-more")


def test_long_bcrypt_password_counts_only_72_bytes_in_apache(apache_copy: Path) -> None:
    for user, password, _ in LONG_BCRYPT_USERS:
        assert len(password.encode()) > 72
        assert _apache_verifies(apache_copy, user, password)
        assert _apache_verifies(apache_copy, user, password[:72])
        assert _apache_verifies(apache_copy, user, password[:72] + "different tail")
        assert not _apache_verifies(apache_copy, user, password[:71])


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


def _apache_verifies(copy: Path, user: str, password: str) -> bool:
    """Run Apache's ``htpasswd -vb``: exit 0 means correct, 3 means wrong password."""
    proc = subprocess.run([HTPASSWD_BIN, "-vb", str(copy), user, password], capture_output=True, text=True)
    assert proc.returncode in (0, 3), proc.stderr
    return proc.returncode == 0
