"""Identify the client, then let the policy judge: the one place a request is let through.

This is the orchestrating half of the gate: it parses ``Authorization``,
checks the throttle, runs the password check off the event loop and verifies
tokens. Every judgement and every refusal text comes from
:class:`auth.decision.Policy`, which has no I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from auth.access import Identity
from auth.credentials import Basic, Bearer, Invalid, is_empty_basic, parse_authorization
from auth.decision import Origin, Policy, valid_claims
from auth.routes import Route
from auth.throttle import LoginThrottle
from auth.tokens import TokenAuthority
from auth.userfiles.store import UserStore
from proxy.http.verify import Verifier

if TYPE_CHECKING:
    from proxy.http.runtime import Stats

__all__ = ["Gate"]


class Gate:
    """Holds what identifying needs; :meth:`check` is the gate every ``/v2`` request passes."""

    def __init__(
        self,
        *,
        policy: Policy,
        store: UserStore,
        verifier: Verifier,
        tokens: TokenAuthority,
        refresh_tokens: TokenAuthority,
        throttle: LoginThrottle | None,
        stats: Stats,
    ) -> None:
        self.policy = policy
        self.store = store
        self.verifier = verifier
        self.tokens = tokens
        self.refresh_tokens = refresh_tokens  # same key, another audience: never usable as access
        self.throttle = throttle
        self.stats = stats

    async def check(self, route: Route, authorization: list[str], origin: Origin) -> str | None:
        """The user name (None if anonymous) when the request may go on; else raises ProxyError."""
        policy = self.policy
        if policy.anonymous_ok(route):
            return None
        creds = parse_authorization(authorization)
        if creds is None or is_empty_basic(creds):
            raise policy.no_credentials(route, origin)
        if isinstance(creds, Invalid):
            raise policy.malformed(creds.reason, route, origin)
        if isinstance(creds, Bearer):
            verified = valid_claims(self.tokens, self.store, creds.token)
            if verified is None:
                raise policy.invalid_token(route, origin)
            claims, identity = verified
            policy.judge_claims(route, claims, identity, origin)
            return claims.subject or None
        identity = await self.login(creds, origin, route)
        policy.judge_identity(route, identity)
        return identity.name

    async def login(self, creds: Basic, origin: Origin, route: Route | None = None) -> Identity:
        """Check a password; throttled per client IP and user name before any bcrypt runs."""
        if self.throttle is not None:
            blocked = self.throttle.blocked(origin.client_ip, creds.user)
            if blocked is not None:
                self.stats.throttle()
                raise self.policy.throttled(blocked)
        identity = await self.verifier.verify(creds.user, creds.password)
        if identity is None:
            if self.throttle is not None:
                self.throttle.failure(origin.client_ip, creds.user)
            raise self.policy.invalid_credentials(origin, route)
        return identity
