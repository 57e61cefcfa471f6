"""Every ``AppKey`` and ``RequestKey`` of the public app, in one place.

Typed keys instead of strings: the access log, the metrics and the admin
listener read what the request path wrote, and a typo must be an import
error, not a silently missing value.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from auth.routes import Route

if TYPE_CHECKING:
    from proxy.http.ratelimit import RequestRates
    from proxy.http.runtime import Live, Stats

__all__ = ["CLIENT", "LIVE", "RATES", "ROUTE", "STATS", "USER"]

LIVE: web.AppKey[Live] = web.AppKey("live")  # the runtime in force; replaced whole on reload
STATS: web.AppKey[Stats] = web.AppKey("stats")  # counters that outlive reloads
RATES: web.AppKey[RequestRates] = web.AppKey("rates")  # limits.requests_per_second buckets (restart-only)

ROUTE: web.RequestKey[Route] = web.RequestKey("route")  # what the request was judged to be
USER: web.RequestKey[str] = web.RequestKey("user")  # the verified user, never what the client claimed
CLIENT: web.RequestKey[str] = web.RequestKey("client")  # the client address the policy judged (see Origin)
