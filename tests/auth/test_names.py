"""Repository names, tags and digests: the grammar of the distribution spec."""

from __future__ import annotations

import pytest

from auth.names import NAME_MAX, valid_digest, valid_name, valid_reference, valid_tag

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("check", "value", "ok"),
    [
        (valid_name, "a", True),
        (valid_name, "a/b/c", True),
        (valid_name, "a.b_c__d---e", True),
        (valid_name, "a___b", False),
        (valid_name, "a..b", False),
        (valid_name, "a/", False),
        (valid_name, "/a", False),
        (valid_name, "", False),
        (valid_name, "A", False),
        (valid_name, "a" * NAME_MAX, True),
        (valid_name, "a" * (NAME_MAX + 1), False),
        (valid_tag, "latest", True),
        (valid_tag, "_x", True),
        (valid_tag, "V1.2-3_4", True),
        (valid_tag, "-x", False),
        (valid_tag, "", False),
        (valid_tag, "x" * 128, True),
        (valid_tag, "x" * 129, False),
        (valid_digest, DIGEST, True),
        (valid_digest, "sha512:" + "0" * 128, True),
        (valid_digest, "multihash+base58:" + "Q" * 40, True),
        (valid_digest, "sha256:" + "a" * 31, False),
        (valid_digest, "sha256" + "a" * 64, False),
        (valid_digest, ":" + "a" * 64, False),
        (valid_reference, "latest", True),
        (valid_reference, DIGEST, True),
        (valid_reference, "la:test", False),
    ],
)
def test_name_tag_digest_grammar(check: object, value: str, ok: bool) -> None:
    assert check(value) is ok  # type: ignore[operator]
