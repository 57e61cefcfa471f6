"""The admin listener: /metrics, /healthz, /readyz, /inflight, /throttle and /cache, never on the public port.

It is a separate aiohttp site (plain HTTP, default 127.0.0.1:9102) so that
metrics and health are not exposed to registry clients, and so that a load
balancer or Kubernetes probe can ask without credentials. Its handlers close
over the public app they report on; the admin app stores nothing of its own.

``/throttle`` can forgive failed logins (``DELETE``), so whoever reaches
this listener can undo brute-force protection: keep it on loopback or a
management network (the default is 127.0.0.1).

``DELETE /cache`` empties the digest cache (``proxy.http.cache``): ``gc``
calls it on every replica's admin URL once the collector has run, because
any digest may be gone then. It is the same list ``gc`` already asks for
writes in flight, so every replica it waited for is cleared; one that does
not answer is named, and its entries age out within ``cache.ttl``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from auth.throttle import LoginThrottle
from proxy.config import parse_host_port
from proxy.http.cache import ResponseCache
from proxy.http.keys import LIVE, STATS
from proxy.observability.metrics import Metrics
from proxy.ops.backend import backend_problem

__all__ = ["create_admin_app", "serve_admin", "start_admin", "throttle_routes"]

READY_TIMEOUT = 3.0


def create_admin_app(main: web.Application, metrics: Metrics) -> web.Application:
    async def metrics_handler(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        """Ready when the backend answers ``GET /v2/`` with 200; a 401 (the registry's own auth) is not ready.

        A backend that demands auth fails every request the proxy forwards,
        so a probe must not route clients here; the body names the fix.
        """
        live = main.get(LIVE)
        if live is None:
            return web.json_response({"status": "starting"}, status=503)
        upstream = live.runtime.upstream
        try:
            async with upstream.session.get(upstream.origin + "/v2/",
                                            timeout=aiohttp.ClientTimeout(total=READY_TIMEOUT)) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            return web.json_response({"status": "backend unreachable", "error": exc.__class__.__name__},
                                     status=503)
        problem = backend_problem(upstream.origin, status)
        if problem is not None:
            return web.json_response({"status": "backend unusable", "backend_status": status, "error": problem},
                                     status=503)
        return web.json_response({"status": "ready", "backend_status": status})

    async def inflight(request: web.Request) -> web.Response:
        """What ``registry-auth-proxy gc`` polls before it runs the collector."""
        stats = main[STATS]
        return web.json_response({"writes": stats.writes_in_flight, "requests": stats.requests_in_flight})

    def throttle_of() -> LoginThrottle | None:
        live = main.get(LIVE)
        throttle = None if live is None else live.runtime.gate.throttle
        # a worker's (``workers`` > 1) is the supervisor's, listed by the supervisor's admin listener
        return throttle if isinstance(throttle, LoginThrottle) else None

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/inflight", inflight)
    app.router.add_routes(throttle_routes(throttle_of))
    add_cache_routes(app, main)
    return app


def throttle_routes(throttle_of: Callable[[], LoginThrottle | None]) -> list[web.RouteDef]:
    """``GET`` and ``DELETE /throttle`` on ``throttle_of()``: a proxy's own, or the supervisor's for all workers."""

    def filters(request: web.Request) -> tuple[str | None, str | None]:
        return request.query.get("address") or None, request.query.get("user") or None

    async def throttle_list(request: web.Request) -> web.Response:
        """Every tracked key (``?address=`` and ``?user=`` filter): what ``registry-auth-proxy throttle list`` shows."""
        throttle = throttle_of()
        if throttle is None:
            return web.json_response({"enabled": False, "entries": []})
        address, user = filters(request)
        return web.json_response({
            "enabled": True,
            "limits": {"failures": throttle.failures, "failures_per_ip": throttle.failures_per_ip,
                       "window": throttle.window, "slow_after": throttle.slow_after, "max_delay": throttle.max_delay},
            "entries": [asdict(e) for e in throttle.entries(address, user)],
        })

    async def throttle_clear(request: web.Request) -> web.Response:
        """Forgive matching keys (``?address=``, ``?user=``, or ``?all=1``); an unfiltered DELETE is refused."""
        address, user = filters(request)
        everything = request.query.get("all") in ("1", "true", "yes")
        if not everything and address is None and user is None:
            return web.json_response({"error": "name ?address=, ?user= or ?all=1"}, status=400)
        throttle = throttle_of()
        cleared = 0 if throttle is None else throttle.clear(address, user, everything=everything)
        return web.json_response({"cleared": cleared})

    return [web.get("/throttle", throttle_list), web.delete("/throttle", throttle_clear)]


def add_cache_routes(app: web.Application, main: web.Application) -> None:
    """``GET`` and ``DELETE /cache`` on the digest cache of ``main``."""

    def cache_of() -> ResponseCache | None:
        live = main.get(LIVE)
        return None if live is None else live.runtime.cache

    async def cache_show(request: web.Request) -> web.Response:
        """What the digest cache holds and has done (the same numbers as the ``cache_*`` metrics)."""
        cache = cache_of()
        if cache is None:
            return web.json_response({"status": "starting"}, status=503)
        c = cache.store.counters
        return web.json_response({
            "enabled": cache.store.enabled, "max_bytes": cache.store.max_bytes, "max_item": cache.store.max_item,
            "ttl": cache.store.ttl, "entries": c.entries, "bytes": c.bytes, "hits": c.hits, "misses": c.misses,
            "stored": c.stored, "rejected": c.rejected, "evicted": dict(c.evicted),
        })

    async def cache_clear(request: web.Request) -> web.Response:
        """Forget every entry: what ``gc`` calls after the collector ran."""
        cache = cache_of()
        if cache is None:
            return web.json_response({"status": "starting"}, status=503)
        return web.json_response({"cleared": cache.clear()})

    app.router.add_get("/cache", cache_show)
    app.router.add_delete("/cache", cache_clear)


async def start_admin(listen: str, main: web.Application, metrics: Metrics) -> web.AppRunner:
    """Start the admin site; a busy address stops start-up with a message naming the key."""
    return await serve_admin(listen, create_admin_app(main, metrics))


async def serve_admin(listen: str, app: web.Application) -> web.AppRunner:
    """Serve ``app`` (this proxy's admin app, or the workers' supervisor's) on ``admin.listen``."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    host, port = parse_host_port(listen)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(exc.errno, f"admin.listen {listen}: {exc.strerror or exc}; choose a free port "
                      "or set `admin: {listen: off}`") from None
    return runner
