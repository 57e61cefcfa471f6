"""Apache htpasswd files: THE line parser, the reader, and pure line edits.

Why one parser for reader and editor: when they disagreed, ``user passwd mark``
edited the line ``mark :HASH`` while the running proxy read that line as user
``"mark "``, so the CLI and the proxy disagreed about which line was ``mark``.
Every function here goes through ``parse_line``.

``parse_line`` follows Apache's ``mod_authn_file``: the line is stripped of
surrounding whitespace; blank lines and lines starting with ``#`` are no entry;
otherwise the user is the text before the first ``:`` *verbatim* (Apache
compares it with ``strcmp``) and the hash is the rest. The first line of a user
wins. A line we cannot use disables that one user (or is ignored) with a
warning, never the file: one typo must not lock everybody out.

The edits are pure functions over lines: the file I/O (locking, atomic rename)
lives in ``auth.userfiles.atomic``, so these only decide what the new lines are
and cannot corrupt a file. Lines the editor does not own (comments, blanks,
malformed lines, other users) are returned unchanged, because an operator may
keep notes in the file and Apache tolerates them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from auth.userfiles.hashing import scheme_of

MAX_USER_BYTES = 255
"""Apache's htpasswd refuses user names longer than this (MAX_STRING_LEN - 1)."""


@dataclass(frozen=True)
class HtpasswdData:
    """Parsed file: usable hashes by user, and users whose line was refused."""

    hashes: Mapping[str, str] = field(default_factory=dict)
    disabled: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()


def parse_line(line: str) -> tuple[str, str] | None:
    """``(user, hash)`` for an entry, None for a blank or comment line.

    Raises ValueError (with the reason) for a line that is neither: no ``:``,
    or nothing before it. The user is kept verbatim, inner or trailing
    whitespace included, because that is the name Apache compares.
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    user, sep, hash_ = text.partition(":")
    if not sep or not user:
        raise ValueError("no 'user:hash' here")
    return user, hash_


def _line_user(line: str) -> str | None:
    """The user a line defines; None for comments, blanks and malformed lines."""
    try:
        parsed = parse_line(line)
    except ValueError:
        return None
    return parsed[0] if parsed else None


def _untypable(user: str) -> bool:
    return any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in user)


def parse_htpasswd(text: str, source: str = "htpasswd") -> HtpasswdData:
    """Read a whole file; problems become ``SOURCE:LINE: ...`` warnings, never errors."""
    hashes: dict[str, str] = {}
    disabled: set[str] = set()
    warnings: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            parsed = parse_line(raw)
        except ValueError as exc:
            warnings.append(f"{source}:{number}: {exc}; line ignored")
            continue
        if parsed is None:
            continue
        user, hash_ = parsed
        if user in hashes or user in disabled:
            continue  # Apache uses the first line for a user
        if _untypable(user):
            warnings.append(
                f"{source}:{number}: user {user!r} contains whitespace or control characters;"
                " clients cannot type it reliably"
            )
        if scheme_of(hash_) is None:
            disabled.add(user)
            warnings.append(
                f"{source}:{number}: user {user!r} has an unrecognised or plaintext hash; user disabled"
            )
            continue
        hashes[user] = hash_
    return HtpasswdData(hashes, frozenset(disabled), tuple(warnings))


def validate_user(user: str) -> str:
    """Return ``user`` if it can be stored in an htpasswd file, else raise ValueError.

    Rejected: empty names, ``:`` (the field separator), whitespace and control
    characters (clients and tools trim or split on them, so the stored name
    would not be the one clients send), a leading ``#`` (the line would be a
    comment), ``robot$`` names (robot accounts live in their own file), and names
    over 255 bytes (Apache's own limit).
    """
    if not user:
        raise ValueError("user name must not be empty")
    if ":" in user:
        raise ValueError(f"user name {user!r} must not contain ':'")
    if any(ch.isspace() for ch in user):
        raise ValueError(f"user name {user!r} must not contain whitespace")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in user):
        raise ValueError(f"user name {user!r} must not contain control characters")
    if user.startswith("#"):
        raise ValueError(f"user name {user!r} must not start with '#' (it would be a comment)")
    if user.startswith("robot$"):
        raise ValueError(f"user name {user!r}: names starting with 'robot$' are robot accounts "
                         "(`registry-auth-proxy robot add`), never htpasswd users")
    if len(user.encode("utf-8", "surrogateescape")) > MAX_USER_BYTES:
        raise ValueError(f"user name must be at most {MAX_USER_BYTES} bytes")
    return user


def list_users(lines: list[str]) -> list[str]:
    """User names in file order, each once (as ``parse_line`` reads them)."""
    seen: dict[str, None] = {}
    for line in lines:
        name = _line_user(line)
        if name is not None:
            seen.setdefault(name, None)
    return list(seen)


def has_user(lines: list[str], user: str) -> bool:
    """True if some line defines exactly ``user``."""
    return any(_line_user(line) == user for line in lines)


def set_user(lines: list[str], user: str, password_hash: str) -> list[str]:
    """Replace the first line of ``user`` (dropping later duplicates) or append one.

    Later duplicates go because Apache uses the first match: a stale duplicate
    below the changed line is harmless, one above it would keep the old password.
    """
    validate_user(user)
    if ":" in password_hash or any(ch in password_hash for ch in "\r\n"):
        raise ValueError("password hash must not contain ':' or line breaks")
    entry = f"{user}:{password_hash}"
    out: list[str] = []
    replaced = False
    for line in lines:
        if _line_user(line) != user:
            out.append(line)
        elif not replaced:
            out.append(entry)
            replaced = True
    if not replaced:
        out.append(entry)
    return out


def remove_user(lines: list[str], user: str) -> list[str]:
    """Drop every line defining ``user``; everything else is kept as is."""
    return [line for line in lines if _line_user(line) != user]
