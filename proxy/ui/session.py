"""The catalog's sign-in session and CSRF tokens (pure: standard library only, no server-side state).

A session is a cookie holding the user name, the user's fingerprint
(``Snapshot.fingerprint``: it changes with the password hash and the
groups), an expiry and a random nonce, signed with HMAC-SHA256 under a key
derived from the token key. Nothing is stored server-side, so replicas that
share ``auth.token.secret_file`` accept each other's sessions, and a
password or group change, a deleted user, or a new token key ends every
session at its next use. The cookie is ``HttpOnly; Secure; SameSite=Strict``
and scoped to ``ui.path``; ``/v2`` never reads cookies at all (its gate
reads ``Authorization`` only), so a session opens nothing in the API.

CSRF tokens are HMACs of a per-browser random value (its own cookie) and
the session's nonce: a form rendered for one browser and one sign-in is
refused in any other, and signing out or in again changes every token.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import secrets
from dataclasses import dataclass

__all__ = ["MAX_COOKIE", "Session", "SessionKeys", "new_browser_id"]

MAX_COOKIE = 1024  # a session cookie is under 200 bytes; anything longer is not ours
_SIG = 32


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes | None:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, binascii.Error):
        return None


@dataclass(frozen=True)
class Session:
    user: str
    fingerprint: str
    expires: int  # Unix time: sessions must survive a restart and cross replicas, so not monotonic
    nonce: str

    @classmethod
    def new(cls, user: str, fingerprint: str, ttl: int, now: float) -> Session:
        return cls(user, fingerprint, int(now) + ttl, secrets.token_urlsafe(16))


def new_browser_id() -> str:
    return secrets.token_urlsafe(18)


class SessionKeys:
    """Seals and opens sessions, makes and checks CSRF tokens; two keys derived from the token key."""

    def __init__(self, token_key: bytes) -> None:
        self._sign = hmac.digest(token_key, b"registry-auth-proxy ui session", "sha256")
        self._csrf = hmac.digest(token_key, b"registry-auth-proxy ui csrf", "sha256")

    def seal(self, session: Session) -> str:
        payload = _b64(json.dumps([session.user, session.fingerprint, session.expires, session.nonce],
                                  separators=(",", ":")).encode())
        return payload + "." + _b64(hmac.digest(self._sign, payload.encode(), "sha256"))

    def open(self, text: str | None, now: float) -> Session | None:
        """The session in a cookie this key signed and that has not expired; None for anything else."""
        if not text or len(text) > MAX_COOKIE or text.count(".") != 1:
            return None
        payload, _, signature = text.partition(".")
        given = _unb64(signature)
        if given is None or len(given) != _SIG:
            return None
        if not hmac.compare_digest(given, hmac.digest(self._sign, payload.encode(), "sha256")):
            return None
        raw = _unb64(payload)
        try:
            user, fingerprint, expires, nonce = json.loads(raw or b"")
        except (ValueError, TypeError, UnicodeDecodeError):
            return None
        if not (isinstance(user, str) and isinstance(fingerprint, str) and isinstance(nonce, str)
                and isinstance(expires, int) and not isinstance(expires, bool)):
            return None
        if expires <= now:
            return None
        return Session(user, fingerprint, expires, nonce)

    def csrf(self, browser: str, session: Session | None) -> str:
        """The token every form of this browser (and this sign-in) carries."""
        bound = f"{browser}\0{session.nonce if session else ''}".encode()
        return _b64(hmac.digest(self._csrf, bound, "sha256"))

    def csrf_ok(self, token: object, browser: str | None, session: Session | None) -> bool:
        if not isinstance(token, str) or not browser or len(token) > 64:
            return False
        return hmac.compare_digest(token.encode(), self.csrf(browser, session).encode())
