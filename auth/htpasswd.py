"""Reading Apache htpasswd files and checking passwords against them.

Accepts every hash Apache's ``htpasswd`` writes on Unix (bcrypt ``$2y$``,
apr1, ``{SHA}``, crypt, ``$5$``/``$6$``) and refuses plaintext, as Apache
does. A line we cannot use disables that one user with a warning, never the
file: one typo must not lock everybody out or crash the proxy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from passlib.context import CryptContext

SCHEMES = ["bcrypt", "apr_md5_crypt", "ldap_sha1", "sha256_crypt", "sha512_crypt", "des_crypt"]
CONTEXT = CryptContext(schemes=SCHEMES)
BCRYPT_MAX_BYTES = 72


@dataclass(frozen=True)
class HtpasswdData:
    """Parsed file: usable hashes by user, and users whose line was refused."""

    hashes: Mapping[str, str] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()


def scheme_of(hash_: str) -> str | None:
    """The passlib scheme that can check ``hash_``, or None if it is unusable."""
    try:
        name = CONTEXT.identify(hash_, required=False)
        if name is None:
            return None
        CONTEXT.handler(name).from_string(hash_)  # parse only: rejects truncated hashes
    except (ValueError, TypeError):
        return None
    return name


def parse_htpasswd(text: str, source: str = "htpasswd") -> HtpasswdData:
    hashes: dict[str, str] = {}
    disabled: set[str] = set()
    warnings: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        user, sep, hash_ = line.partition(":")
        if not sep or not user:
            warnings.append(f"{source}:{number}: no 'user:hash' here; line ignored")
            continue
        if user in hashes or user in disabled:
            continue  # Apache uses the first line for a user
        if scheme_of(hash_) is None:
            disabled.add(user)
            warnings.append(
                f"{source}:{number}: user {user!r} has an unrecognised or plaintext hash; user disabled"
            )
            continue
        hashes[user] = hash_
    return HtpasswdData(hashes, frozenset(disabled), tuple(warnings))


def _prepare(password: str, hash_: str) -> bytes:
    data = password.encode("utf-8")
    if hash_.startswith("$2") and len(data) > BCRYPT_MAX_BYTES:
        data = data[:BCRYPT_MAX_BYTES]  # what Apache's bcrypt does; bcrypt 5 would raise
    return data


def check_password(password: str, hash_: str) -> bool:
    """Constant-shape check; any malformed input is simply a wrong password."""
    try:
        return bool(CONTEXT.verify(_prepare(password, hash_), hash_))
    except (ValueError, TypeError):
        return False


def bcrypt_cost(hash_: str) -> int | None:
    if not hash_.startswith("$2"):
        return None
    try:
        return int(hash_.split("$")[2])
    except (IndexError, ValueError):
        return None
