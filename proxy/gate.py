"""Identify the client and apply the policy: the one place a request is judged.

Reads allowed to anyone never look at ``Authorization``: podman sends
``Basic Og==`` and stale passwords on anonymous pulls, and refusing those
would break public pulls. The ping (``GET /v2/``) is where a login is
checked, so it always challenges when there are no valid credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from auth.credentials import Basic, Bearer, Credentials, Invalid, is_empty_basic, parse_authorization
from auth.policy import Access, Action, Identity, Rule, Verdict, decide
from auth.throttle import LoginThrottle
from auth.tokens import Claims, TokenAuthority, TokenError
from auth.users import UserStore
from proxy.routes import Route
from proxy.verify import Verifier


@dataclass(frozen=True)
class Refusal(Exception):
    """The proxy's answer instead of forwarding: status, JSON error, challenge."""

    status: int
    code: str
    message: str
    challenge: str | None = None
    retry_after: int | None = None  # seconds, sent as Retry-After (429)


@dataclass(frozen=True)
class Origin:
    """How the client reached us; realm URLs and error texts are built from it."""

    scheme: str
    host: str
    client_ip: str = ""  # the TCP peer: the throttle's key (X-Forwarded-For is never trusted)


def _who(rule: Rule) -> str:
    if rule.users:
        return "any registered user"
    if rule.groups:
        return "a member of group " + " or ".join(sorted(rule.groups))
    return "nobody (this action is disabled)"


def scope_actions(action: Action) -> str:
    return "pull,push" if action is Action.PUSH else action.value


class Gate:
    def __init__(
        self,
        *,
        access: Access,
        store: UserStore,
        verifier: Verifier,
        tokens: TokenAuthority,
        refresh_tokens: TokenAuthority,
        mode: str,
        basic_realm: str,
        token_path: str,
        token_realm: str | None,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self.access = access
        self.store = store
        self.verifier = verifier
        self.tokens = tokens
        self.refresh_tokens = refresh_tokens  # same key, another audience: never usable as access
        self.mode = mode
        self.basic_realm = basic_realm
        self.token_path = token_path
        self.token_realm = token_realm
        self.throttle = throttle
        self.throttled = 0  # refusals by the throttle
        self.on_throttled: Callable[[], None] | None = None  # e.g. the metrics counter

    # -- challenges ------------------------------------------------------------
    def challenge(self, origin: Origin, route: Route | None = None, insufficient: bool = False) -> str:
        if self.mode == "basic":
            return f'Basic realm="{self.basic_realm}"'
        realm = self.token_realm or f"{origin.scheme}://{origin.host}{self.token_path}"
        value = f'Bearer realm="{realm}",service="{self.tokens.service}"'
        if route is not None and route.name is not None:
            value += f',scope="repository:{route.name}:{scope_actions(route.action)}"'
        elif route is not None and route.kind == "catalog":
            value += ',scope="registry:catalog:*"'
        if insufficient:
            value += ',error="insufficient_scope"'
        return value

    def invalid_credentials(self, origin: Origin, route: Route | None = None) -> Refusal:
        return Refusal(
            401,
            "UNAUTHORIZED",
            f"invalid username or password for {origin.host} (stored credentials are wrong or outdated): "
            f"run `docker login {origin.host}` again, or `docker logout {origin.host}` to pull anonymously",
            self.challenge(origin, route),
        )

    # -- identity --------------------------------------------------------------
    async def basic_identity(self, creds: Basic, origin: Origin) -> Identity | None:
        """Check a password; throttled per client IP and user name before any bcrypt runs."""
        if self.throttle is not None:
            blocked = self.throttle.blocked(origin.client_ip, creds.user)
            if blocked is not None:
                self.throttled += 1
                if self.on_throttled is not None:
                    self.on_throttled()
                raise Refusal(429, "TOO_MANY_REQUESTS", f"too many failed logins for this {blocked.key_text}; "
                              f"try again in {blocked.retry_after} s", retry_after=blocked.retry_after)
        identity = await self.verifier.verify(creds.user, creds.password)
        if identity is None and self.throttle is not None:
            self.throttle.failure(origin.client_ip, creds.user)
        return identity

    def bearer_claims(self, creds: Bearer) -> Claims | None:
        """Valid, unexpired, and still matching the user's current password and groups."""
        try:
            claims = self.tokens.verify(creds.token)
        except TokenError:
            return None
        if claims.subject:
            snap = self.store.snapshot()
            if snap.identity(claims.subject) is None or snap.fingerprint(claims.subject) != claims.fingerprint:
                return None
        return claims

    # -- the decision ------------------------------------------------------------
    async def check(self, route: Route, authorization: list[str], origin: Origin) -> str | None:
        """Return the user name (None if anonymous) when the request may go on; else raise Refusal."""
        if not route.is_ping and self._anonymous_ok(route):
            return None
        creds: Credentials = parse_authorization(authorization)
        if creds is None or is_empty_basic(creds):
            if route.is_ping:
                raise Refusal(401, "UNAUTHORIZED", "authentication required: log in to use this registry "
                              "for pushes; anonymous pulls need no login", self.challenge(origin))
            return self._refuse_anonymous(route, origin)
        if isinstance(creds, Invalid):
            raise Refusal(401, "UNAUTHORIZED", f"malformed Authorization header: {creds.reason}",
                          self.challenge(origin, route))
        if isinstance(creds, Bearer):
            return self._check_bearer(route, creds, origin)
        identity = await self.basic_identity(creds, origin)
        if identity is None:
            raise self.invalid_credentials(origin, route)
        if route.is_ping:
            return identity.name
        for action, name in self._needs(route):
            verdict = decide(self.access, identity, action, name)
            if verdict is not Verdict.ALLOW:
                rule = self.access.rule(action, name)
                raise Refusal(403, "DENIED", f"{action.value} on {name or 'the catalog'} denied: user "
                              f"{identity.name!r} is not {_who(rule)}")
        return identity.name

    def _needs(self, route: Route) -> list[tuple[Action, str | None]]:
        needs = [(route.action, route.name)]
        if route.mount_from is not None:
            needs.append((Action.PULL, route.mount_from))
        return needs

    def _anonymous_ok(self, route: Route) -> bool:
        return all(self.access.allowed(None, a, n) for a, n in self._needs(route))

    def _refuse_anonymous(self, route: Route, origin: Origin) -> None:
        rule = self.access.rule(route.action, route.name)
        raise Refusal(
            401,
            "UNAUTHORIZED",
            f"authentication required to {route.action.value} {route.name or 'the catalog'}: "
            f"run `docker login {origin.host}` as {_who(rule)}",
            self.challenge(origin, route),
        )

    def _check_bearer(self, route: Route, creds: Bearer, origin: Origin) -> str | None:
        claims = self.bearer_claims(creds)
        if claims is None:
            raise Refusal(401, "UNAUTHORIZED", "the token is invalid or expired, or the user's password "
                          "or groups changed: get a new token", self.challenge(origin, route))
        user = claims.subject or None
        if route.is_ping:
            return user
        for action, name in self._needs(route):
            if name is None:
                ok = claims.allows("registry", "catalog", "*")
            else:
                ok = claims.allows("repository", name, action.value)
            if not ok:
                who = f"user {user!r}" if user else "anonymous"
                if user is None:
                    raise Refusal(401, "UNAUTHORIZED", f"authentication required to {action.value} "
                                  f"{name or 'the catalog'}: run `docker login {origin.host}`",
                                  self.challenge(origin, route, insufficient=True))
                rule = self.access.rule(action, name)
                identity = self.store.snapshot().identity(user)
                if rule.allows(identity):
                    why = f"the token does not grant {action.value} on {name or 'the catalog'}; request a new one"
                else:
                    why = f"{action.value} on {name or 'the catalog'} denied: {who} is not {_who(rule)}"
                raise Refusal(401, "DENIED", why, self.challenge(origin, route, insufficient=True))
        return user
