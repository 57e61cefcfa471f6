"""Repository-name globs for ``access.repositories``: ``*`` within a segment, ``**`` across.

Patterns are compiled once, at config load, into one regex per rule list so a
lookup is a single ``fullmatch`` whatever the number of rules.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# What a pattern may contain: the name grammar's characters plus the wildcards.
PATTERN_RE = re.compile(r"[a-z0-9._/*?-]+")


class GlobError(ValueError):
    """A pattern that cannot match any repository name."""


def glob_to_regex(pattern: str) -> str:
    """Translate one glob to a regex source (no anchors).

    ``*`` and ``?`` never cross a ``/``. ``**`` crosses segments: ``a/**``
    matches ``a`` itself, ``a/x`` and ``a/x/y`` (a rule for a namespace must
    govern the repository named like the namespace too), ``**/x`` matches ``x``
    at any depth including the top, ``a/**/b`` matches ``a/b`` and ``a/x/y/b``.
    """
    if not PATTERN_RE.fullmatch(pattern) or "//" in pattern or pattern.startswith("/") or pattern.endswith("/"):
        raise GlobError(f"{pattern!r}: use lowercase name segments separated by '/', with * ** ? wildcards")
    if "***" in pattern:
        raise GlobError(f"{pattern!r}: '***' is not a wildcard; use '*' or '**'")
    segments = pattern.split("/")
    out: list[str] = []
    last = len(segments) - 1
    for i, seg in enumerate(segments):
        if seg == "**":
            if i == last:
                out.append("(?:/.+)?" if i > 0 else ".+")
            else:
                out.append("(?:/.*)?/" if i > 0 else "(?:.*/)?")
            continue
        if "**" in seg:
            raise GlobError(f"{pattern!r}: '**' must be a whole segment, as in team/** or **/app")
        prefix = "/" if i > 0 and segments[i - 1] != "**" else ""
        body = "".join("[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in seg)
        out.append(prefix + body)
    return "".join(out)


def compile_globs(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """One alternation with a named group per pattern; ``lastgroup`` is the first that matched.

    Python tries alternatives left to right and ``fullmatch`` backtracks into
    the next one only when an earlier one cannot match the whole name, so the
    group that matched is the first pattern that matches: first match wins.
    """
    if not patterns:
        return None
    return re.compile("|".join(f"(?P<r{i}>{glob_to_regex(p)})" for i, p in enumerate(patterns)))


def first_match(compiled: re.Pattern[str] | None, name: str) -> int | None:
    if compiled is None:
        return None
    m = compiled.fullmatch(name)
    if m is None or m.lastgroup is None:
        return None
    return int(m.lastgroup[1:])
