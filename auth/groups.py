"""Reading Apache AuthGroupFile files: ``group: user1 user2``.

Malformed lines are skipped with a warning so that one bad edit cannot take
push rights away from every other group.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_GROUP_RE = re.compile(r"[^\s:]+")


@dataclass(frozen=True)
class GroupData:
    members: Mapping[str, frozenset[str]] = field(default_factory=dict)  # group -> users
    warnings: tuple[str, ...] = ()

    def groups_of(self, user: str) -> frozenset[str]:
        return frozenset(g for g, users in self.members.items() if user in users)


def parse_groups(text: str, source: str = "groups") -> GroupData:
    members: dict[str, set[str]] = {}
    warnings: list[str] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        group, sep, rest = line.partition(":")
        group = group.strip()
        if not sep or not _GROUP_RE.fullmatch(group):
            warnings.append(f"{source}:{number}: expected 'group: user1 user2'; line ignored")
            continue
        members.setdefault(group, set()).update(rest.split())
    return GroupData({g: frozenset(u) for g, u in members.items()}, tuple(warnings))
