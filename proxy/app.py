"""The aiohttp application: the app factory, its resources, and the thin handlers.

Every request reads as one straight path: route -> identify and decide ->
forward -> stream back. The logic lives in ``routes``, ``gate`` and
``forward``; the handlers only connect them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
from aiohttp import web

from auth.policy import Action
from auth.throttle import LoginThrottle
from auth.tokens import TokenAuthority, new_key
from auth.users import UserStore
from proxy.accesslog import USER_KEY
from proxy.config import Config
from proxy.errors import add_api_version, json_error, json_http_errors
from proxy.forward import ClientGone, Upstream, forward
from proxy.gate import Gate, Origin, Refusal
from proxy.maintenance import MaintenanceFlag, maintenance_response
from proxy.metrics import METRICS, Metrics, inflight
from proxy.routes import RouteError, parse_route
from proxy.token_endpoint import json_ok, token_get, token_post
from proxy.verify import Verifier

log = logging.getLogger("registry_auth_proxy")

REFRESH_TTL = 24 * 3600


@dataclass
class Runtime:
    """What the handlers need, built once at start-up (and rebuilt on reload)."""

    config: Config
    gate: Gate
    upstream: Upstream
    metrics: Metrics  # also app[METRICS], for the admin listener and the access-log hook
    maintenance: MaintenanceFlag
    token_key: bytes  # kept across a reload unless auth.token.secret_file changes


CONFIG = web.AppKey("config", Config)
RUNTIME = web.AppKey("runtime", Runtime)


def token_key(config: Config) -> bytes:
    path = config.auth.token.secret_file
    if path is None:
        log.warning("auth.token.secret_file is not set: using a random key; tokens die with this "
                    "process and replicas will not accept each other's tokens (share a secret_file)")
        return new_key()
    key = Path(path).read_bytes().strip()
    if len(key) < 32:
        raise ValueError(f"{path}: token key must be at least 32 bytes (use `head -c 48 /dev/urandom "
                         "| base64 > FILE`)")
    return key


def build_gate(config: Config, store: UserStore, verifier: Verifier, key: bytes) -> Gate:
    tok = config.auth.token
    return Gate(
        access=config.access,
        store=store,
        verifier=verifier,
        tokens=TokenAuthority(key, tok.service, tok.issuer, tok.ttl),
        refresh_tokens=TokenAuthority(key, tok.service + "#refresh", tok.issuer, REFRESH_TTL),
        mode=config.auth.challenge,
        basic_realm=config.auth.realm,
        token_path=tok.path,
        token_realm=tok.realm,
        throttle=LoginThrottle(config.throttle.failures, config.throttle.window) if config.throttle.enabled else None,
    )


async def _resources(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    store = UserStore(config.auth.htpasswd, config.auth.groups, cache_ttl=config.auth.cache_ttl)
    verifier = Verifier(store)
    timeout = aiohttp.ClientTimeout(
        total=None, connect=config.timeouts.connect, sock_connect=config.timeouts.connect,
        sock_read=config.timeouts.read,
    )
    connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=30, ttl_dns_cache=60)
    session = aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
        read_bufsize=256 * 1024,
    )
    key = token_key(config)
    gate = build_gate(config, store, verifier, key)
    gate.on_throttled = app[METRICS].throttle
    app[RUNTIME] = Runtime(config, gate,
                           Upstream(session, config.backend, config.limits.body_timeout),
                           app[METRICS], MaintenanceFlag(config.maintenance_file), key)
    yield
    await session.close()
    verifier.close()


def _origin(request: web.Request) -> Origin:
    return Origin(request.scheme, request.host, request.remote or "")  # remote: the TCP peer, not a header


def _refusal_response(refusal: Refusal) -> web.Response:
    headers = {"WWW-Authenticate": refusal.challenge} if refusal.challenge else {}
    if refusal.retry_after is not None:
        headers["Retry-After"] = str(refusal.retry_after)
    return json_error(refusal.status, refusal.code, refusal.message, headers=headers)


async def handle(request: web.Request) -> web.StreamResponse:
    """Every request lands here: token endpoint, registry API, or a refusal."""
    runtime = request.app[RUNTIME]
    if request.path == runtime.config.auth.token.path:
        return await handle_token(request, runtime)
    try:
        route = parse_route(request.method, request.raw_path)
        if route.action is not Action.PULL and runtime.maintenance.active():
            return maintenance_response(runtime.maintenance)  # before auth: cheaper, and says why at once
        request[USER_KEY] = await runtime.gate.check(
            route, request.headers.getall("Authorization", []), _origin(request)
        )
    except RouteError as exc:
        headers = {"Allow": "GET, HEAD, POST, PUT, PATCH, DELETE"} if exc.status == 405 else None
        return json_error(exc.status, exc.code, exc.message, headers=headers)
    except Refusal as refusal:
        return _refusal_response(refusal)
    try:
        return await forward(request, runtime.upstream, f"{request.scheme}://{request.host}")
    except ClientGone:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=499)


async def handle_token(request: web.Request, runtime: Runtime) -> web.StreamResponse:
    gate = runtime.gate
    try:
        if request.method == "GET":
            body, user = await token_get(gate, request.query, request.headers.getall("Authorization", []),
                                         _origin(request))
        elif request.method == "POST":
            if request.content_type != "application/x-www-form-urlencoded":
                raise Refusal(400, "UNSUPPORTED", "POST the token request as a form")
            body, user = await token_post(gate, await request.post(), _origin(request))
        else:
            return json_error(405, "UNSUPPORTED", f"method {request.method} is not allowed here",
                              headers={"Allow": "GET, POST"})
    except Refusal as refusal:
        return _refusal_response(refusal)
    request[USER_KEY] = user
    return json_ok(body)


def create_app(config: Config) -> web.Application:
    app = web.Application(client_max_size=64 * 1024, middlewares=[inflight, json_http_errors])
    app[CONFIG] = config
    app[METRICS] = Metrics(config.auth.token.path)
    app.cleanup_ctx.append(_resources)
    app.on_response_prepare.append(add_api_version)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app
