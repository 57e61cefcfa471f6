"""The token endpoint (``GET``/``POST /token``) of the registry token flow.

Invalid credentials are always a 401 here: this request *is* ``docker
login``, and answering anything else would make a wrong password "succeed".
"""

from __future__ import annotations

from aiohttp import web
from multidict import MultiDictProxy

from auth.credentials import Basic, is_empty_basic, parse_authorization
from auth.grants import grant_scopes
from auth.policy import Identity
from auth.scopes import Scope, ScopeError, parse_scopes
from auth.tokens import Grant, TokenError
from proxy.gate import Gate, Origin, Refusal


def _check_service(gate: Gate, params: MultiDictProxy[str]) -> None:
    service = params.get("service")
    if service is not None and service != gate.tokens.service:
        raise Refusal(400, "UNSUPPORTED", f"unknown service {service!r}; this registry is "
                      f"{gate.tokens.service!r}")


def _scopes(params: MultiDictProxy[str]) -> list[Scope]:
    try:
        return parse_scopes(params.getall("scope", []))
    except ScopeError as exc:
        raise Refusal(400, "UNSUPPORTED", str(exc)) from exc


def _issue(gate: Gate, who: Identity | None, params: MultiDictProxy[str]) -> dict[str, object]:
    grants: list[Grant] = grant_scopes(gate.access, who, _scopes(params))
    fingerprint = gate.store.snapshot().fingerprint(who.name) if who else ""
    issued = gate.tokens.issue(who.name if who else "", grants, fingerprint)
    return issued.as_response()


async def _basic_login(gate: Gate, creds: Basic, origin: Origin) -> Identity:
    who = await gate.basic_identity(creds, origin)
    if who is None:
        raise gate.invalid_credentials(origin)
    return who


async def token_get(gate: Gate, params: MultiDictProxy[str], authorization: list[str],
                    origin: Origin) -> tuple[dict[str, object], str | None]:
    """Docker, podman and skopeo: Basic credentials (or none) and ``scope`` parameters."""
    _check_service(gate, params)
    creds = parse_authorization(authorization)
    if creds is None or is_empty_basic(creds):
        return _issue(gate, None, params), None
    if not isinstance(creds, Basic):
        raise gate.invalid_credentials(origin)
    who = await _basic_login(gate, creds, origin)
    return _issue(gate, who, params), who.name


async def token_post(gate: Gate, form: MultiDictProxy[str],
                     origin: Origin) -> tuple[dict[str, object], str | None]:
    """OAuth2 password and refresh_token grants (``oauth.md``); containerd tries this first."""
    _check_service(gate, form)
    grant_type = form.get("grant_type")
    if grant_type == "password":
        who = await _basic_login(gate, Basic(form.get("username", ""), form.get("password", "")), origin)
    elif grant_type == "refresh_token":
        who = _refresh_identity(gate, form.get("refresh_token", ""), origin)
    else:
        raise Refusal(400, "UNSUPPORTED", "grant_type must be password or refresh_token")
    body = _issue(gate, who, form)
    if form.get("access_type") == "offline" or grant_type == "refresh_token":
        body["refresh_token"] = _refresh_token(gate, who)
    return body, who.name


def _refresh_token(gate: Gate, who: Identity) -> str:
    fingerprint = gate.store.snapshot().fingerprint(who.name)
    return gate.refresh_tokens.issue(who.name, [], fingerprint).token


def _refresh_identity(gate: Gate, token: str, origin: Origin) -> Identity:
    try:
        claims = gate.refresh_tokens.verify(token)
    except TokenError:
        raise gate.invalid_credentials(origin) from None
    snap = gate.store.snapshot()
    who = snap.identity(claims.subject) if claims.subject else None
    if who is None or snap.fingerprint(who.name) != claims.fingerprint:
        raise gate.invalid_credentials(origin)
    return who


def json_ok(body: dict[str, object]) -> web.Response:
    return web.json_response(body, headers={"Cache-Control": "no-store"})
