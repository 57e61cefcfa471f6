"""Robot secrets and times: how a ``robot$`` secret is made, stored and checked, and how expiry is read.

Split from ``auth.userfiles.robots`` (the file format, scopes and edits):
these are the parts with no knowledge of the file, shared by the store's
login check and the CLI. Only SHA-256 of a 256-bit secret is stored, so a
check is one hash and a constant-time compare.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime

__all__ = ["HASH_PREFIX", "MAX_LIFETIME", "check_secret", "format_time", "hash_secret", "new_secret",
           "parse_expiry", "parse_time"]

HASH_PREFIX = "sha256:"
_HASH_RE = re.compile(r"sha256:[0-9a-f]{64}")
_DUMMY = HASH_PREFIX + "0" * 64  # what an unknown robot's secret is compared with: same cost as a known one
DURATION_RE = re.compile(r"(\d+)([smhdw])")
MAX_LIFETIME = 10 * 365 * 86400  # an expiry is the point; ten years is the most we write
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def new_secret() -> str:
    """256 random bits, URL-safe (no ``:`` or ``$``, so no quoting in Basic or in shells)."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    return HASH_PREFIX + hashlib.sha256(secret.encode("utf-8", "surrogateescape")).hexdigest()


def check_secret(secret: str, stored: str) -> bool:
    """Constant-time compare of the secret's hash with the stored one."""
    return hmac.compare_digest(hash_secret(secret).encode(), stored.encode())


# -- times --------------------------------------------------------------------------
def format_time(epoch: float) -> str:
    return datetime.fromtimestamp(int(epoch), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> float:
    """ISO 8601 (``2025-04-01``, ``2025-04-01T12:00:00Z``); no zone means UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def parse_expiry(text: str, now: float) -> float:
    """``90d``, ``12h``, ``2s``, ``4w`` from ``now``, or an ISO date/time; ValueError if in the past."""
    m = DURATION_RE.fullmatch(text.strip())
    try:
        expires = now + int(m.group(1)) * UNITS[m.group(2)] if m else parse_time(text.strip())
    except ValueError:
        raise ValueError(f"expiry {text!r}: use a duration (90d, 12h, 30m, 2s, 4w) or a date "
                         "(2025-12-31)") from None
    if expires <= now:
        raise ValueError(f"expiry {text!r} is not in the future")
    if expires - now > MAX_LIFETIME:
        raise ValueError(f"expiry {text!r} is more than ten years away")
    return expires
