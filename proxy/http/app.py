"""The aiohttp application and its one handler: a request reads as one straight path.

TLS and the connection limits happen before this (``proxy.server``); the
access log and metrics after it (``proxy.observability``, through aiohttp's
access-log hook). In between, every request goes:

    route -> (token endpoint) -> maintenance -> identify + decide -> forward -> stream back

and every refusal on the way is a :class:`~auth.errors.ProxyError` rendered
by ``proxy.http.errors``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from aiohttp import web

from auth.access import Action
from auth.decision import Origin
from auth.errors import ProxyError
from proxy.config import Config
from proxy.http.errors import add_api_version, json_http_errors, render
from proxy.http.forward import ClientGone, forward
from proxy.http.keys import LIVE, ROUTE, STATS, USER
from proxy.http.runtime import Live, Stats, build_runtime, new_session
from proxy.http.token_endpoint import handle_token

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
        return await _serve(request)
    except ProxyError as err:
        return render(err)
    finally:
        stats.requests_in_flight -= 1
        stats.writes_in_flight -= write


async def _serve(request: web.Request) -> web.StreamResponse:
    runtime = request.app[LIVE].runtime
    origin = Origin(request.scheme, request.host, request.remote or "")  # remote: the TCP peer, not a header
    route = runtime.router.parse(request.method, request.raw_path)
    request[ROUTE] = route
    if route.is_token:
        response, user = await handle_token(request, runtime.gate, origin)
        if user:
            request[USER] = user
        return response
    if route.action is not Action.PULL and runtime.maintenance.active():
        raise runtime.maintenance.refusal()  # before auth: cheaper, and says why at once
    user = await runtime.gate.check(route, request.headers.getall("Authorization", []), origin)
    if user:
        request[USER] = user
    try:
        return await forward(request, runtime.upstream, origin)
    except ClientGone:
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=499)


def create_app(config: Config) -> web.Application:
    """The public app; its runtime is built at start-up (and rebuilt by a reload) by ``build_runtime``."""
    app = web.Application(client_max_size=MAX_FORM, middlewares=[json_http_errors])
    app[STATS] = Stats()
    app.cleanup_ctx.append(_runtime_context(config))
    app.on_response_prepare.append(add_api_version)
    app.router.add_route("*", "/{tail:.*}", handle)
    return app


def _runtime_context(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    """Start-up builds the runtime and the backend pool; cleanup closes what the last runtime holds."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        session = new_session(config)
        try:
            app[LIVE] = Live(build_runtime(config, session, app[STATS]))
        except BaseException:
            await session.close()
            raise
        yield
        await session.close()
        app[LIVE].runtime.gate.verifier.close()

    return context
