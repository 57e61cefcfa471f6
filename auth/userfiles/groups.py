"""Apache ``AuthGroupFile`` files (``group: user1 user2``): THE line parser,
the reader, and pure line edits.

Why one parser for reader and editor: when they disagreed, the reader ignored
``my group: alice`` while the editor treated it as group ``my group``, so the
CLI could list or change a group the running proxy did not know. Every
function here goes through ``parse_line``.

``parse_line``: the line is stripped; blank lines and lines starting with
``#`` are no entry; the group name is the text before the first ``:`` with
surrounding whitespace removed and must contain no whitespace (else the line
is malformed: the reader warns and ignores it, the editor leaves it untouched
and treats that group as nonexistent); members are separated by whitespace.
A group may be spread over several lines and Apache takes the union, so every
function here looks at all lines of a group, not just the first.

Edits return comments, blanks, malformed lines and lines of other groups
unchanged. Lines that are edited are rewritten in the canonical form
``group: a b c`` (original spacing inside that one line is not kept).

Removing the last member keeps the (now empty) ``group:`` line on purpose: the
group is named in proxy.yml's access lists, the operator created it, and an
empty group is a valid state in Apache ("nobody may push right now"). Deleting
the line would make ``group list`` forget the group exists.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from auth.userfiles.htpasswd import validate_user

_GROUP_RE = re.compile(r"[^\s:]+")


@dataclass(frozen=True)
class GroupData:
    """Parsed file: members by group, and the warnings for lines that were ignored."""

    members: Mapping[str, frozenset[str]] = field(default_factory=dict)  # group -> users
    warnings: tuple[str, ...] = ()

    def groups_of(self, user: str) -> frozenset[str]:
        return frozenset(g for g, users in self.members.items() if user in users)


def parse_line(line: str) -> tuple[str, list[str]] | None:
    """``(group, members)`` for a group line, None for a blank or comment line.

    Raises ValueError for a line that is neither (no ``:``, or a group name
    that is empty or contains whitespace).
    """
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    group, sep, rest = text.partition(":")
    group = group.strip()
    if not sep or not _GROUP_RE.fullmatch(group):
        raise ValueError("expected 'group: user1 user2'")
    return group, rest.split()


def _parsed(line: str) -> tuple[str, list[str]] | None:
    """``parse_line`` for the editor: malformed lines are simply not group lines."""
    try:
        return parse_line(line)
    except ValueError:
        return None


def parse_groups(text: str, source: str = "groups") -> GroupData:
    """Read a whole file; malformed lines become ``SOURCE:LINE: ...`` warnings."""
    members: dict[str, set[str]] = {}
    warnings: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        try:
            parsed = parse_line(raw)
        except ValueError as exc:
            warnings.append(f"{source}:{number}: {exc}; line ignored")
            continue
        if parsed is not None:
            members.setdefault(parsed[0], set()).update(parsed[1])
    return GroupData({g: frozenset(u) for g, u in members.items()}, tuple(warnings))


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


def format_line(group: str, members: list[str]) -> str:
    """Canonical group line; an empty group is ``group:``."""
    return f"{group}: {' '.join(members)}" if members else f"{group}:"


def list_groups(lines: list[str]) -> dict[str, list[str]]:
    """Map each group to its members (union over all its lines, file order, no repeats)."""
    groups: dict[str, list[str]] = {}
    for line in lines:
        parsed = _parsed(line)
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
        parsed = _parsed(line)
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
        parsed = _parsed(line)
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
