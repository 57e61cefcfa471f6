"""Pure edits of Apache htpasswd lines, and Apache-compatible bcrypt hashing.

Why pure functions over lines: the file I/O (locking, atomic rename) lives in
``auth.atomic``; these functions only decide what the new lines are, so they are
trivial to test and cannot corrupt a file. Lines the editor does not own
(comments, blank lines, malformed lines, other users) are returned unchanged,
because an operator may keep notes in the file and Apache tolerates them.

Matching follows Apache's ``mod_authn_file``: lines starting with ``#`` (after
leading whitespace) are comments, the user name is the text before the first
``:`` with surrounding whitespace removed, and the *first* matching line wins.
That is why ``set_user`` also drops later duplicates: a stale duplicate below a
changed line is harmless, but one above it would silently keep the old password.
"""

from __future__ import annotations

import bcrypt

BCRYPT_MAX_BYTES = 72
"""bcrypt only uses the first 72 bytes of a password (Apache truncates silently)."""

MIN_COST, MAX_COST = 4, 17
"""The cost range Apache's ``htpasswd -C`` accepts; above 17 a check takes minutes."""

MAX_USER_BYTES = 255
"""Apache's htpasswd refuses user names longer than this (MAX_STRING_LEN - 1)."""


def validate_user(user: str) -> str:
    """Return ``user`` if it can be stored in an htpasswd file, else raise ValueError.

    Rejected: empty names, ``:`` (the field separator), whitespace and control
    characters (Apache strips or splits on them, so the stored name would not be
    the one clients send), a leading ``#`` (the line would be a comment), and
    names over 255 bytes (Apache's own limit).
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
    if len(user.encode("utf-8", "surrogateescape")) > MAX_USER_BYTES:
        raise ValueError(f"user name must be at most {MAX_USER_BYTES} bytes")
    return user


def line_user(line: str) -> str | None:
    """Return the user a line defines, or None for comments, blanks and malformed lines."""
    text = line.strip()
    if not text or text.startswith("#") or ":" not in text:
        return None
    name = text.split(":", 1)[0].strip()
    return name or None


def list_users(lines: list[str]) -> list[str]:
    """User names in file order, each once."""
    seen: dict[str, None] = {}
    for line in lines:
        name = line_user(line)
        if name is not None:
            seen.setdefault(name, None)
    return list(seen)


def has_user(lines: list[str], user: str) -> bool:
    """True if some line defines ``user``."""
    return any(line_user(line) == user for line in lines)


def set_user(lines: list[str], user: str, password_hash: str) -> list[str]:
    """Replace the first line of ``user`` (dropping later duplicates) or append one."""
    validate_user(user)
    if ":" in password_hash or any(ch in password_hash for ch in "\r\n"):
        raise ValueError("password hash must not contain ':' or line breaks")
    entry = f"{user}:{password_hash}"
    out: list[str] = []
    replaced = False
    for line in lines:
        if line_user(line) != user:
            out.append(line)
        elif not replaced:
            out.append(entry)
            replaced = True
    if not replaced:
        out.append(entry)
    return out


def remove_user(lines: list[str], user: str) -> list[str]:
    """Drop every line defining ``user``; everything else is kept as is."""
    return [line for line in lines if line_user(line) != user]


def hash_password(password: str | bytes, cost: int = 12) -> str:
    """Return an Apache-style ``$2y$`` bcrypt hash of ``password``.

    Apache's ``htpasswd -B`` silently uses only the first 72 bytes; bcrypt 5
    raises ValueError instead, so we truncate first to behave like Apache (a
    hash made here and one made by Apache accept exactly the same passwords).
    ``$2y$`` and ``$2b$`` are the same algorithm; Apache writes ``$2y$``, so we
    do too, so the files look the same whichever tool wrote them.
    """
    if not MIN_COST <= cost <= MAX_COST:
        raise ValueError(f"bcrypt cost must be between {MIN_COST} and {MAX_COST}, got {cost}")
    secret = password.encode("utf-8") if isinstance(password, str) else password
    if b"\x00" in secret:
        raise ValueError("password must not contain NUL bytes")
    secret = secret[:BCRYPT_MAX_BYTES]
    hashed = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=cost, prefix=b"2b")).decode("ascii")
    return "$2y$" + hashed[len("$2b$") :]
