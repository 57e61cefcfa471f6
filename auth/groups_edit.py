"""Pure edits of Apache ``AuthGroupFile`` lines (``group: user1 user2``).

Parsing follows ``mod_authz_groupfile``: after leading whitespace, lines that
start with ``#`` and blank lines are ignored; the group name is the text before
the first ``:``; members are separated by whitespace. A group may be spread over
several lines and Apache takes the union, so every function here looks at all
lines of a group, not just the first.

Comments, blank lines, lines without ``:`` and lines of other groups are
returned unchanged. Lines that are edited are rewritten in the canonical form
``group: a b c`` (original spacing inside that one line is not kept).

Removing the last member keeps the (now empty) ``group:`` line on purpose: the
group is named in proxy.yml's access lists, the operator created it, and an
empty group is a valid state in Apache ("nobody may push right now"). Deleting
the line would make ``group list`` forget the group exists.
"""

from __future__ import annotations

from auth.htpasswd_edit import validate_user


def validate_group(group: str) -> str:
    """Return ``group`` if it can be written to a group file, else raise ValueError."""
    if not group:
        raise ValueError("group name must not be empty")
    if ":" in group:
        raise ValueError(f"group name {group!r} must not contain ':'")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in group):
        raise ValueError(f"group name {group!r} must not contain whitespace or control characters")
    if group.startswith("#"):
        raise ValueError(f"group name {group!r} must not start with '#' (it would be a comment)")
    return group


def parse_line(line: str) -> tuple[str, list[str]] | None:
    """Return ``(group, members)`` for a group line, None for anything else."""
    text = line.strip()
    if not text or text.startswith("#") or ":" not in text:
        return None
    name, rest = text.split(":", 1)
    name = name.strip()
    if not name:
        return None
    return name, rest.split()


def format_line(group: str, members: list[str]) -> str:
    """Canonical group line; an empty group is ``group:``."""
    return f"{group}: {' '.join(members)}" if members else f"{group}:"


def list_groups(lines: list[str]) -> dict[str, list[str]]:
    """Map each group to its members (union over all its lines, file order, no repeats)."""
    groups: dict[str, list[str]] = {}
    for line in lines:
        parsed = parse_line(line)
        if parsed is None:
            continue
        name, members = parsed
        current = groups.setdefault(name, [])
        current.extend(m for m in dict.fromkeys(members) if m not in current)
    return groups


def is_member(lines: list[str], group: str, user: str) -> bool:
    """True if ``user`` is listed on any line of ``group``."""
    return user in list_groups(lines).get(group, [])


def add_member(lines: list[str], group: str, user: str) -> list[str]:
    """Add ``user`` to ``group``: no-op if already a member, else extend the group's
    first line, or append a new ``group: user`` line if the group does not exist."""
    validate_group(group)
    validate_user(user)
    if is_member(lines, group, user):
        return list(lines)
    out: list[str] = []
    added = False
    for line in lines:
        parsed = parse_line(line)
        if not added and parsed is not None and parsed[0] == group:
            out.append(format_line(group, [*parsed[1], user]))
            added = True
        else:
            out.append(line)
    if not added:
        out.append(format_line(group, [user]))
    return out


def _drop(lines: list[str], user: str, group: str | None) -> list[str]:
    """Remove ``user`` from lines of ``group`` (all groups if None); other lines untouched."""
    out: list[str] = []
    for line in lines:
        parsed = parse_line(line)
        if parsed is None or (group is not None and parsed[0] != group) or user not in parsed[1]:
            out.append(line)
            continue
        out.append(format_line(parsed[0], [m for m in parsed[1] if m != user]))
    return out


def remove_member(lines: list[str], group: str, user: str) -> list[str]:
    """Remove ``user`` from every line of ``group``; the group line stays, maybe empty."""
    return _drop(lines, user, group)


def remove_user_everywhere(lines: list[str], user: str) -> list[str]:
    """Remove ``user`` from all groups (used when the user itself is deleted)."""
    return _drop(lines, user, None)
