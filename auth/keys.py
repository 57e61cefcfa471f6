"""Is a token key random? The judgement ``serve``, a reload and ``check-config`` all use.

Why this exists: the shipped Kubernetes placeholder
(``REPLACE: head -c 48 /dev/urandom | base64``) is 43 bytes, passed the old
"at least 32 bytes" rule, and a push token signed with it was accepted: anyone
who read the manifest could mint tokens. A length rule cannot tell text a human
typed from random bytes, so this module also looks for what random keys never
have: few distinct bytes, a skewed byte histogram, a block that repeats, a run
like ``abcdefgh``, placeholder words, or sentences.

Every bound is far outside what real keys do. Measured over 100 000 keys each
(tests/auth/test_keys.py repeats it with 10 000): ``head -c 48 /dev/urandom |
base64`` has at least 30 distinct bytes and 4.7 bits/byte, raw 32 random bytes
23 and 4.4, ``openssl rand -hex 16`` (32 hex digits, the weakest key the length
rule admits) 9 and 2.7. Hex keys are why the distinct-byte bound is 8 and not
16: a 64-digit hex key shows fewer than 16 distinct digits one time in four.

The key is judged as the proxy uses it: the file's bytes with surrounding
whitespace stripped (a base64 key is used as text, never decoded). Messages
name the file and the command that makes a good key, never the key itself.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from pathlib import Path

__all__ = ["KEY_COMMAND", "MIN_KEY_BYTES", "judge_token_key", "read_token_key"]

MIN_KEY_BYTES = 32
"""HS256 wants a key as long as its output; ``TokenAuthority`` refuses shorter ones too."""

KEY_COMMAND = "head -c 48 /dev/urandom | base64 > {path}"
"""The fix every message names; 48 random bytes are 384 bits, as base64 64 characters."""

MIN_DISTINCT = 8
"""Fewer distinct bytes than this is a pattern; random hex shows >= 9 in 32 digits (see the module doc)."""

MIN_BITS_PER_BYTE = 2.0
"""Shannon entropy of the byte histogram; 32 random hex digits measure >= 2.7, base64 and raw >= 4.2."""

REPEAT = 8
"""A block this long seen twice (overlaps count) is a repeated pattern: ~1e-7 for random hex, less for the rest."""

RUN = 8
"""This many consecutive bytes each one above (or below) the last, like ``abcdefgh`` or ``87654321``."""

PLACEHOLDER_WORDS = ("replace", "change", "example", "secret", "placeholder", "password")
"""Words of six letters or more: a random base64 key contains one about once in 10^7 keys."""

_WORDS = re.compile(r"[A-Za-z]*[G-Zg-z][A-Za-z]*")
"""A run of letters with one beyond ``f``: a word, never a run of hex digits (a UUID is not a passphrase)."""
_SEPARATORS = frozenset("-_.,:;/")


def _entropy(data: bytes) -> float:
    """Shannon entropy of the byte histogram, bits per byte (0 for one repeated byte, 8 at most)."""
    n = len(data)
    return -sum(c / n * math.log2(c / n) for c in Counter(data).values())


def _repeats(data: bytes) -> bool:
    seen: set[bytes] = set()
    for i in range(len(data) - REPEAT + 1):
        block = data[i:i + REPEAT]
        if block in seen:
            return True
        seen.add(block)
    return False


def _has_run(data: bytes) -> bool:
    """True when RUN consecutive bytes step by +1 (or all by -1)."""
    for step in (1, -1):
        length = 1
        for a, b in itertools.pairwise(data):
            length = length + 1 if b - a == step else 1
            if length >= RUN:
                return True
    return False


def _text_problem(data: bytes) -> str | None:
    """What gives printable text away as typed by a person; None for anything else.

    Only applies when every byte is printable ASCII (random raw bytes are
    that one time in 10^14), so spaces in raw keys are no sign of anything.
    """
    if not all(32 <= b < 127 or b in b"\r\n" for b in data):
        return None
    text = data.decode("ascii")
    lowered = text.lower()
    for word in PLACEHOLDER_WORDS:
        if word in lowered:
            return f"a placeholder (it contains {word!r})"
    if " " in text or "\t" in text:
        return "a sentence (it contains spaces), not a key"
    single_case = text == text.lower() or text == text.upper()
    if single_case and _SEPARATORS.intersection(text) and sum(len(w) >= 3 for w in _WORDS.findall(text)) >= 2:
        return "words joined by punctuation (a passphrase), not a key"
    return None


def judge_token_key(data: bytes, path: str | Path = "the token key file") -> str | None:
    """None when ``data`` (stripped) can be a random key; otherwise why not, naming ``path`` and the fix.

    Pure: the caller reads the file. ``data`` is stripped here too, so the
    judgement sees exactly the bytes the proxy would sign with.
    """
    key = data.strip()
    why: str | None
    if not key:
        why = "is empty"
    elif len(key) < MIN_KEY_BYTES:
        trimmed = " once whitespace at its ends is trimmed" if len(key) != len(data) else ""
        why = f"is {len(key)} bytes{trimmed}; it must be at least {MIN_KEY_BYTES} bytes"
    elif (text := _text_problem(key)) is not None:
        why = f"looks like {text}"
    elif len(set(key)) < MIN_DISTINCT:
        why = f"has only {len(set(key))} distinct bytes: a pattern, not random bytes"
    elif _entropy(key) < MIN_BITS_PER_BYTE:
        why = f"has {_entropy(key):.1f} bits of entropy per byte: a pattern, not random bytes"
    elif _repeats(key):
        why = f"repeats a block of {REPEAT} bytes: a pattern, not random bytes"
    elif _has_run(key):
        why = f"contains a run of {RUN} consecutive characters (like abcdefgh): not random bytes"
    else:
        return None
    risk = "" if len(key) < MIN_KEY_BYTES else "; whoever guesses it can sign tokens"
    return f"{path}: the token key {why}{risk}. Make a random one: {KEY_COMMAND.format(path=path)}"


def read_token_key(path: Path) -> bytes:
    """The key in ``path`` (stripped), or ValueError with ``judge_token_key``'s reason.

    OSError (a missing or unreadable file) propagates: the caller's message
    for those is already clear.
    """
    data = Path(path).read_bytes()
    problem = judge_token_key(data, path)
    if problem is not None:
        raise ValueError(problem)
    return data.strip()
