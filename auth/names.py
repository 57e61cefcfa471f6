"""Repository names and references, per the distribution grammar.

Names are validated before any decision so that the string that is judged is
exactly the string the registry will act on: no encodings, no dot segments.
"""

from __future__ import annotations

import re

NAME_MAX = 255
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
NAME_RE = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
TAG_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
DIGEST_RE = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[A-Za-z0-9=_-]{32,}")


def valid_name(name: str) -> bool:
    return len(name) <= NAME_MAX and NAME_RE.fullmatch(name) is not None


def valid_tag(tag: str) -> bool:
    return TAG_RE.fullmatch(tag) is not None


def valid_digest(digest: str) -> bool:
    return DIGEST_RE.fullmatch(digest) is not None


def valid_reference(ref: str) -> bool:
    return valid_tag(ref) or valid_digest(ref)
