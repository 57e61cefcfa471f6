"""Identify the client, then let the policy judge: the one place a request is let through.

This is the orchestrating half of the gate: it parses ``Authorization``,
checks the throttle, runs the password check off the event loop and verifies
tokens. Every judgement and every refusal text comes from
:class:`auth.decision.Policy`, which has no I/O.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING

from auth.access import Identity
from auth.credentials import Basic, Bearer, Invalid, is_empty_basic, parse_authorization
from auth.decision import Origin, Policy, valid_claims
from auth.errors import ProxyError
from auth.routes import Route
from auth.throttle import Blocked, LoginThrottle, Slot
from auth.tokens import TokenAuthority
from auth.userfiles.store import UserStore
from proxy.http.verify import Verifier, credential_key

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
        # (address, digest of the credentials) -> the running check every identical request awaits
        self._checks: dict[tuple[str, bytes], asyncio.Future[Identity | Blocked | None]] = {}

    async def check(self, route: Route, authorization: list[str], origin: Origin,
                    proven: Callable[[Identity], None] | None = None) -> Identity | None:
        """Who is asking (None if anonymous) when the request may go on; else raises ProxyError.

        The catalog is open to anonymous callers by default but filtered by
        the caller's pull rights, so credentials sent with it are checked.
        ``proven`` is told the identity as soon as the credentials prove it,
        before the policy judges it: a ``reader`` refused a push is logged as
        ``reader``, not as ``-``.
        """
        policy = self.policy
        anonymous_ok = policy.anonymous_ok(route, origin)
        if anonymous_ok and route.kind != "catalog":
            return None
        creds = parse_authorization(authorization)
        if creds is None or is_empty_basic(creds):  # podman's ``Basic Og==`` is no credentials
            if anonymous_ok:
                return None
            raise policy.no_credentials(route, origin)
        if isinstance(creds, Invalid):
            raise policy.malformed(creds.reason, route, origin)
        if isinstance(creds, Bearer):
            verified = valid_claims(self.tokens, self.store, creds.token)
            if verified is None:
                raise policy.invalid_token(route, origin)
            claims, identity = verified
            if proven is not None and identity is not None:  # an anonymous token proves nobody
                proven(identity)
            policy.judge_claims(route, claims, identity, origin)
            return identity
        identity = await self.login(creds, origin, route)
        if proven is not None:
            proven(identity)
        policy.judge_identity(route, identity, origin)
        return identity

    async def login(self, creds: Basic, origin: Origin, route: Route | None = None) -> Identity:
        """Check a password; a throttle slot is reserved before any bcrypt runs and resolved after.

        The reservation counts this check as in flight, so concurrent guesses
        cannot all slip past a counter that is only written when bcrypt
        answers. Identical credentials from one address share one check
        (:meth:`_check`), registered *before* its first await: with
        ``workers`` > 1 the reservation is a round trip to the supervisor and
        a slow user's check sleeps first, and a marker set only when bcrypt
        starts let a CI job's 32 parallel requests each reserve a slot and
        trip the limit with a correct password.
        """
        throttle = self.throttle
        if throttle is None:
            identity = await self.verifier.verify(creds.user, creds.password)
            if identity is None:
                raise self.policy.invalid_credentials(origin, route)
            return identity
        known = self.verifier.known(creds.user, creds.password)
        if known is not None:  # verified within auth.cache_ttl: not a guess, held nowhere; a blocked pair still waits
            slot = await _reserve(throttle, origin.client_ip, creds.user, count=False)
            if isinstance(slot, Blocked):
                raise self._throttled(slot)
            throttle.succeeded(slot)  # the password is right: this pair's failures are forgiven
            return known
        key = (origin.client_ip, credential_key(creds.user, creds.password))
        check = self._checks.get(key)
        if check is None:
            check = asyncio.ensure_future(self._check(throttle, creds, origin.client_ip))
            self._checks[key] = check
            check.add_done_callback(lambda _t: self._checks.pop(key, None))
        outcome = await asyncio.shield(check)  # a caller that leaves does not abandon the others' check
        if isinstance(outcome, Blocked):
            raise self._throttled(outcome)
        if outcome is None:
            raise self.policy.invalid_credentials(origin, route)
        return outcome

    def _throttled(self, blocked: Blocked) -> ProxyError:
        self.stats.throttle()
        return self.policy.throttled(blocked)

    async def _check(self, throttle: LoginThrottle, creds: Basic, address: str) -> Identity | Blocked | None:
        """One counted check: reserve, wait out the user's delay, bcrypt, resolve with the true outcome.

        It runs as its own task, so it always resolves its slot by what the
        password turned out to be, whoever is still waiting for it.
        """
        slot = await _reserve(throttle, address, creds.user)
        if isinstance(slot, Blocked):
            return slot
        identity = None
        try:
            if slot.delay > 0:  # this user failed from many addresses: slow every check, refuse none
                await asyncio.sleep(slot.delay)
            identity = await self.verifier.verify(creds.user, creds.password)
        finally:
            if identity is None:
                throttle.failed(slot)
            else:
                throttle.succeeded(slot)
        return identity


async def _reserve(throttle: LoginThrottle, address: str, user: str, count: bool = True) -> Slot | Blocked:
    """The throttle's answer, awaited when ``workers`` > 1 (the supervisor's, ``proxy.server.workers.throttle``)."""
    slot = throttle.reserve(address, user, count)
    if inspect.isawaitable(slot):
        slot = await slot
    return slot
