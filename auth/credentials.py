"""Parsing the ``Authorization`` header into something the policy can check.

Every malformed header parses to ``Invalid`` rather than raising: bad input is
a refusal, never a crash, and never silently anonymous on a write.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

MAX_HEADER = 8192


@dataclass(frozen=True)
class Basic:
    user: str
    password: str

    def __repr__(self) -> str:  # never let a password reach a log line by accident
        return f"Basic(user={self.user!r}, password=<redacted>)"


@dataclass(frozen=True)
class Bearer:
    token: str

    def __repr__(self) -> str:
        return "Bearer(<redacted>)"


@dataclass(frozen=True)
class Invalid:
    reason: str


Credentials = Basic | Bearer | Invalid | None


def parse_authorization(values: list[str]) -> Credentials:
    """``values`` are all Authorization header values the client sent."""
    if not values:
        return None
    if len(values) > 1:
        return Invalid("more than one Authorization header")
    header = values[0]
    if len(header) > MAX_HEADER:
        return Invalid("Authorization header too long")
    scheme, _, param = header.strip().partition(" ")
    param = param.strip()
    if scheme.lower() == "basic":
        return _parse_basic(param)
    if scheme.lower() == "bearer":
        if not param or any(c.isspace() for c in param):
            return Invalid("malformed Bearer token")
        return Bearer(param)
    return Invalid("unsupported Authorization scheme")


def _parse_basic(param: str) -> Basic | Invalid:
    try:
        raw = base64.b64decode(param.encode("ascii"), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, UnicodeError, ValueError):
        return Invalid("malformed Basic credentials")
    user, sep, password = text.partition(":")
    if not sep:
        return Invalid("Basic credentials without ':'")
    return Basic(user, password)


def is_empty_basic(creds: Credentials) -> bool:
    """podman and skopeo send ``Basic Og==`` (empty user and password) when anonymous."""
    return isinstance(creds, Basic) and not creds.user and not creds.password
