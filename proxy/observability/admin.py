"""The admin listener: /metrics, /healthz, /readyz, /inflight and /throttle, never on the public port.

It is a separate aiohttp site (plain HTTP, default 127.0.0.1:9102) so that
metrics and health are not exposed to registry clients, and so that a load
balancer or Kubernetes probe can ask without credentials. Its handlers close
over the public app they report on; the admin app stores nothing of its own.

``/throttle`` can forgive failed logins (``DELETE``), so whoever reaches
this listener can undo brute-force protection: keep it on loopback or a
management network (the default is 127.0.0.1).
"""

from __future__ import annotations

from dataclasses import asdict

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from auth.throttle import LoginThrottle
from proxy.config import parse_host_port
from proxy.http.keys import LIVE, STATS
from proxy.observability.metrics import Metrics
from proxy.ops.backend import backend_problem

__all__ = ["create_admin_app", "start_admin"]

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
        return None if live is None else live.runtime.gate.throttle

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

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/inflight", inflight)
    app.router.add_get("/throttle", throttle_list)
    app.router.add_delete("/throttle", throttle_clear)
    return app


async def start_admin(listen: str, main: web.Application, metrics: Metrics) -> web.AppRunner:
    """Start the admin site; a busy address stops start-up with a message naming the key."""
    runner = web.AppRunner(create_admin_app(main, metrics), access_log=None)
    await runner.setup()
    host, port = parse_host_port(listen)
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(exc.errno, f"admin.listen {listen}: {exc.strerror or exc}; choose a free port "
                      "or set `admin: {listen: off}`") from None
    return runner
