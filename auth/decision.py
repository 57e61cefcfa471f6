"""The judging half of the gate, sans I/O: who is asking, may they, and what to answer if not.

The transport (``proxy.http.gate``) finds out who is asking (it parses the
header, runs bcrypt off the event loop, checks the throttle); everything it
then needs to know, and every refusal it sends, comes from here:

* the challenge text (``Basic realm=...`` or ``Bearer realm=...,scope=...``);
* whether a request needs credentials at all (reads allowed to anyone never
  look at ``Authorization``: podman sends ``Basic Og==`` and stale passwords
  on anonymous pulls, and refusing those would break public pulls);
* the verdict for a verified user or a verified token, as a :class:`ProxyError`.

The ping (``GET /v2/``) is where a login is checked, so it always challenges
when there are no valid credentials.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from auth.access import Access, Action, Identity, Rule, Verdict, decide
from auth.errors import ProxyError
from auth.routes import Route
from auth.throttle import Blocked
from auth.tokens import Claims, TokenAuthority, TokenError

if TYPE_CHECKING:
    from auth.userfiles.store import UserStore

__all__ = ["Origin", "Policy", "scope_actions", "valid_claims"]


@dataclass(frozen=True)
class Origin:
    """How the client reached us; realm URLs and error texts are built from it."""

    scheme: str
    host: str
    client_ip: str = ""  # the TCP peer: the throttle's key (X-Forwarded-For is never trusted)


def _who(rule: Rule) -> str:
    if rule.anyone:
        return "anyone"
    if rule.users:
        return "any registered user"
    if rule.groups:
        return "a member of group " + " or ".join(sorted(rule.groups))
    return "nobody (this action is disabled)"


def _what(name: str | None) -> str:
    return name or "the catalog"


def scope_actions(action: Action) -> str:
    """The scope's action list for a challenge: a push needs pull too (docker checks blobs first)."""
    return "pull,push" if action is Action.PUSH else action.value


def valid_claims(tokens: TokenAuthority, store: UserStore, token: str) -> tuple[Claims, Identity | None] | None:
    """The claims of a valid, unexpired token still matching its user's password and groups, and that user.

    The signature is checked first: a forged token costs no look at the user
    files. The identity (None for an anonymous token) is the one the check
    used, so the caller needs no second look.
    """
    try:
        claims = tokens.verify(token)
    except TokenError:
        return None
    if not claims.subject:
        return claims, None
    snapshot = store.snapshot()
    identity = snapshot.identity(claims.subject)
    if identity is None or snapshot.fingerprint(claims.subject) != claims.fingerprint:
        return None
    return claims, identity


@dataclass(frozen=True)
class Policy:
    """The ``access`` table plus how to challenge: everything a verdict depends on."""

    access: Access
    mode: str  # "bearer" or "basic"
    basic_realm: str
    service: str
    token_path: str
    token_realm: str | None = None  # None: built from the public origin (public_url, or the checked Host)

    # -- challenges --------------------------------------------------------------
    def challenge(self, origin: Origin, route: Route | None = None, insufficient: bool = False) -> str:
        """The ``WWW-Authenticate`` value; a mount challenges for pull on its source too.

        The scopes are exactly what :meth:`needs` will check, space-separated
        in one ``scope`` parameter as distribution's token auth writes them,
        so a client that asks for what it is told can succeed.
        """
        if self.mode == "basic":
            return f'Basic realm="{self.basic_realm}"'
        realm = self.token_realm or f"{origin.scheme}://{origin.host}{self.token_path}"
        value = f'Bearer realm="{realm}",service="{self.service}"'
        if route is not None and route.name is not None:
            scopes = [f"repository:{route.name}:{scope_actions(route.action)}"]
            if route.mount_from is not None:
                scopes.append(f"repository:{route.mount_from}:pull")
            value += f',scope="{" ".join(scopes)}"'
        elif route is not None and route.kind == "catalog":
            value += ',scope="registry:catalog:*"'
        if insufficient:
            value += ',error="insufficient_scope"'
        return value

    def _unauthorized(self, message: str, origin: Origin, route: Route | None = None,
                      code: str = "UNAUTHORIZED", insufficient: bool = False) -> ProxyError:
        return ProxyError(401, code, message, {"WWW-Authenticate": self.challenge(origin, route, insufficient)})

    # -- what a request needs --------------------------------------------------------
    @staticmethod
    def needs(route: Route) -> list[tuple[Action, str | None]]:
        """Every (action, repository) the request needs; a mount also needs pull on its source."""
        needs = [(route.action, route.name)]
        if route.mount_from is not None:
            needs.append((Action.PULL, route.mount_from))
        return needs

    def anonymous_ok(self, route: Route, origin: Origin) -> bool:
        """True when no credentials are needed (never for the ping, which is where logins are checked)."""
        return not route.is_ping and all(self.access.allowed(None, a, n, origin.client_ip)
                                         for a, n in self.needs(route))

    def may_pull(self, who: Identity | None, name: str, origin: Origin) -> bool:
        """What the catalog is filtered by: the same lookup as a pull of that repository."""
        return self.access.allowed(who, Action.PULL, name, origin.client_ip)

    def _network_refusal(self, action: Action, name: str | None, origin: Origin) -> ProxyError | None:
        rule = self.access.rule(action, name)
        if rule.reachable_from(origin.client_ip):
            return None
        return ProxyError(403, "DENIED", f"{action.value} on {_what(name)} is not accepted from "
                          f"{origin.client_ip or 'an unknown address'}: only from "
                          + ", ".join(str(n) for n in rule.networks))

    # -- refusals before anyone is identified ------------------------------------------
    def no_credentials(self, route: Route, origin: Origin) -> ProxyError:
        if route.is_ping:
            return self._unauthorized("authentication required: log in to use this registry for pushes; "
                                      "anonymous pulls need no login", origin)
        for action, name in self.needs(route):
            refusal = self._network_refusal(action, name, origin)
            if refusal is not None:  # logging in cannot help: say so instead of challenging
                return refusal
        action, name = next(((a, n) for a, n in self.needs(route)
                             if not self.access.allowed(None, a, n, origin.client_ip)), self.needs(route)[0])
        rule = self.access.rule(action, name)
        return self._unauthorized(f"authentication required to {action.value} {_what(name)}: "
                                  f"run `docker login {origin.host}` as {_who(rule)}", origin, route)

    def malformed(self, reason: str, route: Route, origin: Origin) -> ProxyError:
        return self._unauthorized(f"malformed Authorization header: {reason}", origin, route)

    def invalid_credentials(self, origin: Origin, route: Route | None = None) -> ProxyError:
        return self._unauthorized(
            f"invalid username or password for {origin.host} (stored credentials are wrong or outdated): "
            f"run `docker login {origin.host}` again, or `docker logout {origin.host}` to pull anonymously",
            origin, route)

    def invalid_token(self, route: Route, origin: Origin) -> ProxyError:
        return self._unauthorized("the token is invalid or expired, or the user's password or groups "
                                  "changed: get a new token", origin, route)

    @staticmethod
    def throttled(blocked: Blocked) -> ProxyError:
        """429 naming the limit reached, never what was sent: no user name, no password."""
        return ProxyError(429, "TOO_MANY_REQUESTS", f"too many failed logins {blocked.key_text}; "
                          f"try again in {blocked.retry_after} s", {"Retry-After": str(blocked.retry_after)})

    # -- verdicts -----------------------------------------------------------------------
    def _denied(self, identity: Identity, action: Action, name: str | None) -> str:
        """Why a known identity is refused: a robot's missing scope first, else who ``access`` wants."""
        if not identity.in_scope(action, name):
            assert identity.scopes is not None
            return identity.scopes.lacking(action, name)
        return (f"{action.value} on {_what(name)} denied: user {identity.name!r} is not "
                f"{_who(self.access.rule(action, name))}")

    def judge_identity(self, route: Route, identity: Identity, origin: Origin) -> None:
        """A verified Basic login: 403 DENIED for what its groups (or its network) do not allow."""
        if route.is_ping:
            return
        for action, name in self.needs(route):
            verdict = decide(self.access, identity, action, name, origin.client_ip)
            if verdict is Verdict.WRONG_NETWORK:
                refusal = self._network_refusal(action, name, origin)
                assert refusal is not None
                raise refusal
            if verdict is not Verdict.ALLOW:
                raise ProxyError(403, "DENIED", self._denied(identity, action, name))

    def judge_claims(self, route: Route, claims: Claims, identity: Identity | None, origin: Origin) -> None:
        """A verified token: it must grant every need, and ``access`` must still allow it now.

        A token records what was allowed when it was issued; the policy in
        force (after a reload) and the client's network decide at use, so a
        tightened rule or a token carried outside the allowed networks opens
        nothing. ``identity`` is the token's subject as the user files know
        it now (None when anonymous).
        """
        if route.is_ping:
            return
        for action, name in self.needs(route):
            granted = (claims.allows("registry", "catalog", "*") if name is None
                       else claims.allows("repository", name, action.value))
            verdict = decide(self.access, identity, action, name, origin.client_ip)
            if verdict is Verdict.WRONG_NETWORK:
                refusal = self._network_refusal(action, name, origin)
                assert refusal is not None
                raise refusal
            if granted and verdict is Verdict.ALLOW:
                continue
            if not claims.subject:
                raise self._unauthorized(f"authentication required to {action.value} {_what(name)}: "
                                         f"run `docker login {origin.host}`", origin, route, insufficient=True)
            if verdict is Verdict.ALLOW:
                why = f"the token does not grant {action.value} on {_what(name)}; request a new one"
            else:
                why = self._denied(identity or Identity(claims.subject), action, name)
            raise self._unauthorized(why, origin, route, code="DENIED", insufficient=True)
