"""Authorization header parsing: every malformed header is Invalid, never an exception or anonymous."""

from __future__ import annotations

import base64

import pytest

from auth.credentials import Basic, Bearer, Invalid, is_empty_basic, parse_authorization


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def test_no_header_is_anonymous() -> None:
    assert parse_authorization([]) is None


@pytest.mark.parametrize(
    ("header", "user", "password"),
    [
        (f"Basic {b64(b'mark:pusherpwd')}", "mark", "pusherpwd"),
        (f"basic {b64(b'mark:pusherpwd')}", "mark", "pusherpwd"),
        (f"BASIC   {b64(b'mark:pusherpwd')}  ", "mark", "pusherpwd"),
        (f"Basic {b64(b'mark:pa:ss:word')}", "mark", "pa:ss:word"),  # the password may contain ':'
        (f"Basic {b64(b'mark:')}", "mark", ""),
        (f"Basic {b64('jürgen:pässwörd'.encode())}", "jürgen", "pässwörd"),
    ],
)
def test_basic(header: str, user: str, password: str) -> None:
    assert parse_authorization([header]) == Basic(user, password)


@pytest.mark.parametrize(
    "header",
    [
        "Basic not*base64!",
        "Basic bWFyazpwd",  # padding missing
        "Basic ====",
        "Basic " + b64(b"no colon here"),
        "Basic " + b64(b"\xff\xfe:password"),
        "Basic " + b64(b"mark:\xff"),
        "Basic bWFy azpw",
        "Basic é",
    ],
)
def test_malformed_basic_is_invalid(header: str) -> None:
    creds = parse_authorization([header])
    assert isinstance(creds, Invalid), creds


def test_invalid_reasons_are_specific() -> None:
    no_colon = parse_authorization(["Basic " + b64(b"markpw")])
    assert isinstance(no_colon, Invalid) and "':'" in no_colon.reason
    bad = parse_authorization(["Basic @@@"])
    assert isinstance(bad, Invalid) and "malformed Basic" in bad.reason


def test_huge_header_is_invalid_without_decoding() -> None:
    header = "Basic " + b64(b"mark:" + b"x" * 100_000)
    assert len(header) > 100_000
    creds = parse_authorization([header])
    assert isinstance(creds, Invalid) and "too long" in creds.reason


def test_bearer() -> None:
    assert parse_authorization(["Bearer abc.def.ghi"]) == Bearer("abc.def.ghi")
    assert parse_authorization(["bearer  abc.def.ghi "]) == Bearer("abc.def.ghi")


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer abc def", "Bearer abc\tdef", "Bearer a\x0bb"])
def test_malformed_bearer_is_invalid(header: str) -> None:
    assert isinstance(parse_authorization([header]), Invalid)


@pytest.mark.parametrize("header", ["Digest username=x", "Negotiate abc", "", "   ", "Basic", "Basicx abc",
                                    "NTLM TlRMTVNTUAAB"])
def test_other_schemes_and_empty_are_invalid(header: str) -> None:
    assert isinstance(parse_authorization([header]), Invalid), header


def test_two_headers_are_invalid() -> None:
    one = f"Basic {b64(b'mark:pusherpwd')}"
    creds = parse_authorization([one, one])
    assert isinstance(creds, Invalid) and "more than one" in creds.reason
    assert isinstance(parse_authorization([one, "Bearer x"]), Invalid)


def test_empty_basic_is_recognised() -> None:
    assert is_empty_basic(parse_authorization(["Basic Og=="]))
    assert not is_empty_basic(parse_authorization([f"Basic {b64(b'mark:')}"]))
    assert not is_empty_basic(parse_authorization([f"Basic {b64(b':pw')}"]))
    assert not is_empty_basic(None)
    assert not is_empty_basic(Invalid("x"))
    assert not is_empty_basic(Bearer("x"))


def test_repr_and_str_never_show_secrets() -> None:
    basic = parse_authorization([f"Basic {b64(b'mark:s3cr3t-pw')}"])
    bearer = parse_authorization(["Bearer tok.en-s3cr3t"])
    for creds in (basic, bearer):
        for text in (repr(creds), str(creds), f"{creds}", f"{creds!r}", repr([creds]), repr({"c": creds})):
            assert "s3cr3t" not in text
    assert "mark" in repr(basic)
