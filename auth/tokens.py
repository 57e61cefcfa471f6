"""Registry bearer tokens: HS256 JWTs shaped as distribution's ``jwt.md`` describes.

Tokens carry a fingerprint of the user's hash and groups, so a password or
group change makes every token of that user worthless at once, not at expiry.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import jwt

ALGORITHM = "HS256"
LEEWAY = 30  # seconds of clock skew tolerated between replicas
VERIFIED_MAX = 4096  # tokens whose checks are remembered (each until it expires)


class TokenError(Exception):
    """Any token we refuse. The message is safe to show; it never contains the token."""


@dataclass(frozen=True)
class Grant:
    type: str
    name: str
    actions: tuple[str, ...]

    def as_claim(self) -> dict[str, object]:
        return {"type": self.type, "name": self.name, "actions": list(self.actions)}


@dataclass(frozen=True)
class Claims:
    subject: str  # "" when anonymous
    grants: tuple[Grant, ...]
    fingerprint: str

    def allows(self, type_: str, name: str, action: str) -> bool:
        return any(g.type == type_ and g.name == name and action in g.actions for g in self.grants)


@dataclass(frozen=True)
class Issued:
    token: str
    issued_at: int
    expires_in: int

    def as_response(self) -> dict[str, object]:
        iso = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.issued_at))
        return {
            "token": self.token,
            "access_token": self.token,
            "expires_in": self.expires_in,
            "issued_at": iso,
        }


class TokenAuthority:
    """Signs and checks tokens for one service with one shared key."""

    def __init__(
        self,
        key: bytes,
        service: str,
        issuer: str,
        ttl: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(key) < 32:
            raise ValueError("token key must be at least 32 bytes")
        self._key = key
        self.service = service
        self.issuer = issuer
        self.ttl = ttl
        self._clock = clock
        self._verified: OrderedDict[bytes, tuple[Claims, float]] = OrderedDict()

    def issue(self, subject: str, grants: Iterable[Grant], fingerprint: str = "") -> Issued:
        now = int(self._clock())
        claims: dict[str, object] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.service,
            "exp": now + self.ttl,
            "nbf": now - 1,
            "iat": now,
            "jti": secrets.token_urlsafe(16),
            "access": [g.as_claim() for g in grants],
        }
        if fingerprint:
            claims["fp"] = fingerprint
        token = jwt.encode(claims, self._key, algorithm=ALGORITHM)
        return Issued(token, now, self.ttl)

    def verify(self, token: str) -> Claims:
        """Check a token; a token verified before is only re-checked for expiry.

        Clients send the same token on every request of a push: caching the
        result of the signature and claim checks (by a digest of the token)
        saves the JWT decode on all but the first. Not thread-safe: call it
        from the event loop only.
        """
        key = hashlib.sha256(token.encode()).digest()
        hit = self._verified.get(key)
        if hit is not None:
            claims, expires = hit
            if self._clock() <= expires + LEEWAY:
                return claims
            del self._verified[key]
            raise TokenError("token expired")
        claims, expires = self._decode(token)
        self._verified[key] = (claims, expires)
        if len(self._verified) > VERIFIED_MAX:
            self._verified.popitem(last=False)
        return claims

    def _decode(self, token: str) -> tuple[Claims, float]:
        try:
            header = jwt.get_unverified_header(token)
            if header.get("alg") != ALGORITHM:
                raise TokenError("token algorithm not accepted")
            data = jwt.decode(
                token,
                self._key,
                algorithms=[ALGORITHM],
                audience=self.service,
                issuer=self.issuer,
                options={
                    "require": ["exp", "iat", "nbf", "aud", "iss", "sub"],
                    "verify_exp": False,  # checked below against our clock, which tests can move
                    "verify_nbf": False,
                    "verify_iat": False,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise TokenError(f"invalid token: {type(exc).__name__}") from exc
        now = self._clock()
        try:
            expires, not_before = float(data["exp"]), float(data["nbf"])
        except (TypeError, ValueError) as exc:
            raise TokenError("invalid token: bad exp/nbf") from exc
        if now > expires + LEEWAY:
            raise TokenError("token expired")
        if now < not_before - LEEWAY:
            raise TokenError("token not yet valid")
        claims = Claims(str(data.get("sub", "")), _grants(data.get("access")), str(data.get("fp", "")))
        return claims, expires


def _grants(raw: object) -> tuple[Grant, ...]:
    if not isinstance(raw, list):
        return ()
    out = []
    for item in raw:
        if not isinstance(item, Mapping):
            continue
        actions = item.get("actions")
        if isinstance(actions, list):
            out.append(Grant(str(item.get("type")), str(item.get("name")), tuple(str(a) for a in actions)))
    return tuple(out)


def new_key() -> bytes:
    return secrets.token_bytes(32)
