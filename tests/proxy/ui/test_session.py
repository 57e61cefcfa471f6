"""Signed session cookies and CSRF tokens: what a browser may hold and what it cannot forge."""

from __future__ import annotations

import base64
import hmac
import json
import re

from proxy.ui.session import Session, SessionKeys, new_browser_id

KEY = b"k" * 32
NOW = 1_700_000_000.0


def test_a_sealed_session_opens_until_it_expires() -> None:
    keys = SessionKeys(KEY)
    session = Session.new("mark", "f" * 16, 3600, NOW)
    sealed = keys.seal(session)
    assert keys.open(sealed, NOW) == session
    assert keys.open(sealed, NOW + 3599) == session
    assert keys.open(sealed, NOW + 3600) is None
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", sealed)  # cookie-safe without quoting


def test_nonces_differ_between_sign_ins() -> None:
    assert Session.new("mark", "f", 60, NOW).nonce != Session.new("mark", "f", 60, NOW).nonce


def test_another_key_or_any_change_is_refused() -> None:
    keys = SessionKeys(KEY)
    sealed = keys.seal(Session.new("reader", "f" * 16, 3600, NOW))
    assert SessionKeys(b"x" * 32).open(sealed, NOW) is None
    payload, signature = sealed.split(".")
    forged = base64.urlsafe_b64encode(json.dumps(["mark", "f" * 16, int(NOW) + 3600, "n"]).encode()).rstrip(b"=")
    assert keys.open(forged.decode() + "." + signature, NOW) is None
    assert keys.open(payload + "." + signature[:-2] + "AA", NOW) is None
    for junk in (None, "", ".", "a.b.c", "x" * 5000, payload, "." + signature, "!!!.###"):
        assert keys.open(junk, NOW) is None


def test_a_validly_signed_payload_of_the_wrong_shape_is_refused() -> None:
    keys = SessionKeys(KEY)
    for payload in ([1, 2, 3, 4], ["u", "f", True, "n"], ["u", "f", "later", "n"], {"u": 1}, "text"):
        encoded = base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode()
        sig = hmac.digest(keys._sign, encoded.encode(), "sha256")
        cookie = encoded + "." + base64.urlsafe_b64encode(sig).rstrip(b"=").decode()
        assert keys.open(cookie, NOW) is None


def test_csrf_tokens_are_bound_to_the_browser_and_the_sign_in() -> None:
    keys = SessionKeys(KEY)
    browser, other = new_browser_id(), new_browser_id()
    session = Session.new("mark", "f", 60, NOW)
    anonymous = keys.csrf(browser, None)
    signed_in = keys.csrf(browser, session)
    assert keys.csrf_ok(anonymous, browser, None)
    assert keys.csrf_ok(signed_in, browser, session)
    assert not keys.csrf_ok(anonymous, browser, session)  # signing in changes every token
    assert not keys.csrf_ok(signed_in, other, session)
    assert not keys.csrf_ok(anonymous, None, None)
    assert not keys.csrf_ok(None, browser, None)
    assert not keys.csrf_ok("", browser, None)
    assert not SessionKeys(b"z" * 32).csrf_ok(anonymous, browser, None)
