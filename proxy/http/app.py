"""The aiohttp application and its one handler: a request reads as one straight path.

TLS and the connection limits happen before this (``proxy.server``); the
access log and metrics after it (``proxy.observability``, through aiohttp's
access-log hook). In between, every request goes:

    route -> (token endpoint) -> maintenance -> identify + decide -> (memory or forward) -> stream back

and every refusal on the way is a :class:`~auth.errors.ProxyError` rendered
by ``proxy.http.errors``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from functools import partial

from aiohttp import web

from auth.access import Action, Identity
from auth.clientaddr import forwarded_client
from auth.errors import ProxyError
from auth.hosts import public_origin
from auth.routes import judge_body_type
from proxy.config import Config
from proxy.http.budget import bound_tls_reads
from proxy.http.catalog import serve_catalog
from proxy.http.errors import add_api_version, json_http_errors, render
from proxy.http.forward import forward
from proxy.http.keys import CLIENT, LIVE, RATES, ROUTE, STATS, USER
from proxy.http.ratelimit import RequestRates
from proxy.http.runtime import Live, Runtime, Stats, build_runtime, new_session
from proxy.http.token_endpoint import handle_token
from proxy.http.upstream import ClientGone

__all__ = ["create_app", "handle"]

MAX_FORM = 64 * 1024  # the token endpoint's form; /v2 bodies are streamed, never read into memory
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})


async def handle(request: web.Request) -> web.StreamResponse:
    """Every request lands here: the token endpoint, the registry API, or a refusal."""
    stats = request.app[STATS]
    write = request.method in WRITES and request.path.startswith("/v2")
    stats.requests_in_flight += 1
    stats.writes_in_flight += write
    try:
        # first, before any work: the same address the policy judges (see client_address)
        request.app[RATES].check(client_address(request, request.app[LIVE].runtime), stats)
        return await _serve(request)
    except ProxyError as err:
        return render(err)
    finally:
        stats.requests_in_flight -= 1
        stats.writes_in_flight -= write


async def _serve(request: web.Request) -> web.StreamResponse:
    runtime = request.app[LIVE].runtime
    origin = public_origin(request.scheme, request.headers.getall("Host", []), client_address(request, runtime),
                           runtime.config.public_url)
    request[CLIENT] = origin.client_ip
    route = runtime.router.parse(request.method, request.raw_path)
    request[ROUTE] = route
    if route.is_token:
        response, user = await handle_token(request, runtime.gate, origin)
        if user:
            request[USER] = user
        return response
    judge_body_type(request.method, request.headers.getall("Content-Type", []))
    if route.action is not Action.PULL and runtime.maintenance.active():
        raise runtime.maintenance.refusal()  # before auth: cheaper, and says why at once
    authorization = request.headers.getall("Authorization", [])
    who = await runtime.gate.check(route, authorization, origin,
                                   partial(_logged_as, request) if authorization else None)
    try:
        if route.kind == "catalog" and request.method == "GET":
            return await serve_catalog(request, runtime, who, origin)
        key = runtime.cache.key(request, route)  # content by digest; asked only after the gate let it through
        if key is not None:
            return await runtime.cache.serve(request, key, origin.client_ip,
                                             partial(forward, request, runtime.upstream, origin))
        return await forward(request, runtime.upstream, origin)
    except ClientGone:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=499)


def _logged_as(request: web.Request, who: Identity) -> None:
    """The gate proved ``who``: the access log names them even if the policy refuses next."""
    request[USER] = who.name


def client_address(request: web.Request, runtime: Runtime) -> str:
    """The client the policy, the throttle and the access log use.

    The TCP peer, which is already the PROXY header's client when
    ``proxy_protocol`` is on (``proxy.server.listener``). Only when that peer
    is one of ``trusted_proxies`` is ``X-Forwarded-For`` read, and then only
    its rightmost untrusted hop (``auth.clientaddr``): anything a client
    writes there itself is never believed.
    """
    peer = request.remote or ""
    trusted = runtime.config.trusted_proxies
    if not trusted:
        return peer
    return forwarded_client(peer, request.headers.getall("X-Forwarded-For", []), trusted)


def create_app(config: Config, extend: Callable[[web.Application, Config], None] | None = None) -> web.Application:
    """The public app; its runtime is built at start-up (and rebuilt by a reload) by ``build_runtime``.

    ``extend`` adds routes a higher layer serves (``proxy.ui.install``, the
    web catalog, given by ``proxy.server``) before the catch-all below,
    which would otherwise answer them; ``proxy.http`` never imports it.
    """
    app = web.Application(client_max_size=MAX_FORM, middlewares=[json_http_errors])
    app[STATS] = Stats()
    app[RATES] = RequestRates(config.limits)
    app.cleanup_ctx.append(_runtime_context(config))
    app.on_response_prepare.append(add_api_version)
    if extend is not None:
        extend(app, config)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _runtime_context(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    """Start-up builds the runtime and the backend pool; cleanup closes what the last runtime holds."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        bound_tls_reads()  # before the first accept: 64 KiB, not 256 KiB, per client TLS connection
        session = new_session(config)
        try:
            app[LIVE] = Live(build_runtime(config, session, app[STATS]))
        except BaseException:
            await session.close()
            raise
        yield
        await app[LIVE].runtime.upstream.close()  # both clients: the lean one and the session for uploads
        app[LIVE].runtime.gate.verifier.close()

    return context
