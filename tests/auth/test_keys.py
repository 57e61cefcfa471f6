"""``auth.keys``: token keys that are not random are refused; random ones never are (issue 11, item 7).

Found: the shipped Kubernetes placeholder ``REPLACE: head -c 48 /dev/urandom |
base64`` (43 bytes) passed the 32-byte rule and a push token signed with it
was accepted. The no-false-refusal tests judge 10 000 fresh keys of each kind
an operator makes; the bounds sit far from what such keys measure (see the
module doc), so these cannot fail by bad luck in any realistic number of runs.
"""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from auth.keys import judge_token_key, read_token_key

ROOT = Path(__file__).resolve().parents[2]
OLD_PLACEHOLDER = b"REPLACE: head -c 48 /dev/urandom | base64"
N = 10_000

KINDS: dict[str, Callable[[], bytes]] = {
    "head -c 48 /dev/urandom | base64": lambda: base64.b64encode(os.urandom(48)) + b"\n",
    "head -c 48 /dev/urandom (raw)": lambda: os.urandom(48),
}
OTHER_KINDS: dict[str, Callable[[], bytes]] = {
    "openssl rand -hex 32": lambda: os.urandom(32).hex().encode() + b"\n",
    "openssl rand -hex 16 (32 digits, the least the length rule admits)": lambda: os.urandom(16).hex().encode(),
    "secrets.token_urlsafe(32)": lambda: secrets.token_urlsafe(32).encode(),
    "uuidgen": lambda: str(uuid.uuid4()).encode() + b"\n",
}


@pytest.mark.parametrize("kind", KINDS)
def test_ten_thousand_random_keys_are_all_accepted(kind: str) -> None:
    refused = [key for key in (KINDS[kind]() for _ in range(N)) if judge_token_key(key) is not None]
    assert refused == []


@pytest.mark.parametrize("kind", OTHER_KINDS)
def test_other_common_ways_to_make_a_key_are_accepted(kind: str) -> None:
    refused = [key for key in (OTHER_KINDS[kind]() for _ in range(N // 5)) if judge_token_key(key) is not None]
    assert refused == []


def test_the_real_command_output_is_accepted() -> None:
    for _ in range(20):
        out = subprocess.run(["sh", "-c", "head -c 48 /dev/urandom | base64"], capture_output=True, check=True).stdout
        assert judge_token_key(out) is None, out


def _shipped_k8s_key() -> str:
    docs = [d for d in yaml.safe_load_all((ROOT / "deploy" / "k8s" / "secrets.yaml").read_text()) if d]
    [token] = [d for d in docs if d["metadata"]["name"] == "registry-auth-proxy-token"]
    return str(token["stringData"]["token.key"])


def test_the_shipped_k8s_placeholder_is_refused() -> None:
    assert judge_token_key(_shipped_k8s_key().encode()) is not None


REFUSED = {
    "the old shipped placeholder": OLD_PLACEHOLDER,
    "empty": b"",
    "whitespace only": b" \n\t\n",
    "31 bytes": b"x" * 31,
    "changeme": b"changeme-changeme-changeme-changeme",
    "example": b"ExampleKeyDoNotUse0123456789ABCDEFGH",
    "the word secret": b"Xy7secretQz81Lm0Pq2Rs4Tu6Vw8Xy0Za2",
    "a sentence": b"our registry token key for production use",
    "a passphrase": b"correct-horse-battery-staple-registry",
    "one repeated byte": b"k" * 48,
    "base64 of one repeated byte": base64.b64encode(b"k" * 48),
    "a repeated hex pattern": b"0123456789abcdef" * 4,
    "a repeated block in random text": base64.b64encode(os.urandom(12)) * 2,
    "the alphabet": b"abcdefghijklmnopqrstuvwxyz0123456789",
    "zeros": b"\x00" * 48,
    "few distinct bytes": bytes([1, 2, 3, 5, 8, 13, 21]) * 3 + bytes([1, 3, 2, 8, 5, 21, 13]) * 2,
}


@pytest.mark.parametrize("name", REFUSED)
def test_keys_that_are_not_random_are_refused_with_the_file_and_the_fix(name: str) -> None:
    key = REFUSED[name]
    why = judge_token_key(key, "/etc/rap/token.key")
    assert why is not None, name
    assert why.startswith("/etc/rap/token.key: the token key ")
    assert "head -c 48 /dev/urandom | base64 > /etc/rap/token.key" in why
    if len(key.strip()) >= 8:
        assert key.strip().decode("latin-1") not in why  # the key itself is never echoed


def test_reasons_say_what_is_wrong() -> None:
    assert "placeholder" in (judge_token_key(OLD_PLACEHOLDER) or "")
    assert "spaces" in (judge_token_key(b"our registry token key for production use") or "")
    assert "is empty" in (judge_token_key(b"\n") or "")
    assert "is 31 bytes; it must be at least 32 bytes" in (judge_token_key(b"x" * 31) or "")
    assert "31 bytes once whitespace at its ends is trimmed" in (judge_token_key(b" " + b"A" * 31) or "")
    assert "distinct bytes" in (judge_token_key(base64.b64encode(b"k" * 48)) or "")
    assert "repeats a block" in (judge_token_key(b"0123456789abcdef" * 4) or "")
    assert "run of 8" in (judge_token_key(b"Zq9" + b"abcdefgh" + base64.b64encode(os.urandom(24))) or "")


def test_read_token_key_strips_and_judges(tmp_path: Path) -> None:
    good = tmp_path / "good.key"
    key = base64.b64encode(os.urandom(48))
    good.write_bytes(key + b"\n")
    assert read_token_key(good) == key
    bad = tmp_path / "bad.key"
    bad.write_bytes(OLD_PLACEHOLDER + b"\n")
    with pytest.raises(ValueError, match=r"bad\.key: the token key looks like a placeholder"):
        read_token_key(bad)
    with pytest.raises(OSError):
        read_token_key(tmp_path / "missing.key")
