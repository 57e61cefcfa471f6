"""Apache's own ``htpasswd`` as the oracle for these tests, and the fixture's tables.

Files are made by the real tool, so the formats are Apache's, not what our
library believes Apache writes. The tables describe ``tests/fixtures/apache.htpasswd``
(see its README) and are shared by the hashing and htpasswd tests.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

HTPASSWD_BIN = "/usr/bin/htpasswd"
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "apache.htpasswd"

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

FORMATS = [  # (htpasswd flags, prefix of the hash, passlib scheme)
    (("-B", "-C", "4"), "$2y$04$", "bcrypt"),
    (("-B",), "$2y$05$", "bcrypt"),
    (("-m",), "$apr1$", "apr_md5_crypt"),
    (("-s",), "{SHA}", "ldap_sha1"),
    (("-d",), "", "des_crypt"),
    (("-2",), "$5$", "sha256_crypt"),
    (("-5",), "$6$", "sha512_crypt"),
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def apache(path: Path, user: str, password: str, *flags: str) -> str:
    """Add/replace ``user`` with Apache's htpasswd; returns the line it wrote."""
    create = [] if path.exists() else ["-c"]
    subprocess.run([HTPASSWD_BIN, "-b", *flags, *create, str(path), user, password],
                   check=True, capture_output=True, text=True, timeout=60)
    return next(line for line in path.read_text().splitlines() if line.startswith(user + ":"))


def apache_verifies(path: Path, user: str, password: str) -> bool:
    """Run Apache's ``htpasswd -vb``: exit 0 means correct, 3 means wrong password."""
    proc = subprocess.run([HTPASSWD_BIN, "-vb", str(path), user, password], capture_output=True, timeout=60)
    assert proc.returncode in (0, 3), proc.stderr
    return proc.returncode == 0


def touch_later(path: Path) -> None:
    """Make sure the edit is visible as a new mtime even on coarse-timestamp filesystems."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))
