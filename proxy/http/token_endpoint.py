"""The token endpoint (``GET``/``POST /token``) of the registry token flow.

Invalid credentials are always a 401 here: this request *is* ``docker
login``, and answering anything else would make a wrong password "succeed".
"""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDictProxy

from auth.access import Identity
from auth.credentials import Basic, is_empty_basic, parse_authorization
from auth.decision import Origin
from auth.errors import ProxyError
from auth.scopes import Scope, ScopeError, grant_scopes, parse_scopes
from auth.tokens import TokenError
from proxy.http.gate import Gate

__all__ = ["handle_token"]


async def handle_token(request: web.Request, gate: Gate, origin: Origin) -> tuple[web.Response, str | None]:
    """The response and the verified user (None for an anonymous token)."""
    if request.method == "GET":
        body, user = await _token_get(gate, request.query, request.headers.getall("Authorization", []), origin)
    else:  # the router lets only GET and POST through
        if request.content_type != "application/x-www-form-urlencoded":
            raise ProxyError(400, "UNSUPPORTED", "POST the token request as a form")
        body, user = await _token_post(gate, await request.post(), origin)
    return web.json_response(body, headers={"Cache-Control": "no-store"}), user


def _check_service(gate: Gate, params: MultiDictProxy[str]) -> None:
    service = params.get("service")
    if service is not None and service != gate.tokens.service:
        raise ProxyError(400, "UNSUPPORTED", f"unknown service {service!r}; this registry is "
                         f"{gate.tokens.service!r}")


def _scopes(params: MultiDictProxy[str]) -> list[Scope]:
    try:
        return parse_scopes(params.getall("scope", []))
    except ScopeError as exc:
        raise ProxyError(400, "UNSUPPORTED", str(exc)) from exc


def _issue(gate: Gate, who: Identity | None, params: MultiDictProxy[str], origin: Origin) -> dict[str, object]:
    grants = grant_scopes(gate.policy.access, who, _scopes(params), origin.client_ip)
    fingerprint = gate.store.snapshot().fingerprint(who.name) if who else ""
    return gate.tokens.issue(who.name if who else "", grants, fingerprint).as_response()


async def _token_get(gate: Gate, params: MultiDictProxy[str], authorization: list[str],
                     origin: Origin) -> tuple[dict[str, object], str | None]:
    """Docker, podman and skopeo: Basic credentials (or none) and ``scope`` parameters."""
    _check_service(gate, params)
    creds = parse_authorization(authorization)
    if creds is None or is_empty_basic(creds):
        return _issue(gate, None, params, origin), None
    if not isinstance(creds, Basic):
        raise gate.policy.invalid_credentials(origin)
    who = await gate.login(creds, origin)
    return _issue(gate, who, params, origin), who.name


async def _token_post(gate: Gate, form: MultiDictProxy[str],
                      origin: Origin) -> tuple[dict[str, object], str | None]:
    """OAuth2 password and refresh_token grants (``oauth.md``); containerd tries this first."""
    _check_service(gate, form)
    grant_type = form.get("grant_type")
    if grant_type == "password":
        who = await gate.login(Basic(form.get("username", ""), form.get("password", "")), origin)
    elif grant_type == "refresh_token":
        who = _refresh_identity(gate, form.get("refresh_token", ""), origin)
    else:
        raise ProxyError(400, "UNSUPPORTED", "grant_type must be password or refresh_token")
    body = _issue(gate, who, form, origin)
    if form.get("access_type") == "offline" or grant_type == "refresh_token":
        fingerprint = gate.store.snapshot().fingerprint(who.name)
        body["refresh_token"] = gate.refresh_tokens.issue(who.name, [], fingerprint).token
    return body, who.name


def _refresh_identity(gate: Gate, token: str, origin: Origin) -> Identity:
    try:
        claims = gate.refresh_tokens.verify(token)
    except TokenError:
        raise gate.policy.invalid_credentials(origin) from None
    snap = gate.store.snapshot()
    who = snap.identity(claims.subject) if claims.subject else None
    if who is None or snap.fingerprint(who.name) != claims.fingerprint:
        raise gate.policy.invalid_credentials(origin)
    return who
