"""The admin listener: /metrics, /healthz, /readyz and /inflight, never on the public port.

It is a separate aiohttp site (plain HTTP, default 127.0.0.1:9102) so that
metrics and health are not exposed to registry clients, and so that a load
balancer or Kubernetes probe can ask without credentials. Its handlers close
over the public app they report on; the admin app stores nothing of its own.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from proxy.config import parse_host_port
from proxy.http.keys import LIVE, STATS
from proxy.observability.metrics import Metrics

__all__ = ["create_admin_app", "start_admin"]

READY_TIMEOUT = 3.0


def create_admin_app(main: web.Application, metrics: Metrics) -> web.Application:
    async def metrics_handler(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(metrics.registry), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(request: web.Request) -> web.Response:
        """Ready when the backend answers ``GET /v2/`` with any HTTP status."""
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
        return web.json_response({"status": "ready", "backend_status": status})

    async def inflight(request: web.Request) -> web.Response:
        """What ``registry-auth-proxy gc`` polls before it runs the collector."""
        stats = main[STATS]
        return web.json_response({"writes": stats.writes_in_flight, "requests": stats.requests_in_flight})

    app = web.Application()
    app.router.add_get("/metrics", metrics_handler)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/inflight", inflight)
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
