"""Prometheus metrics for one proxy process, kept in a per-app registry.

Everything is recorded in two places only: ``inflight`` (a middleware that
counts requests and writes in progress) and ``Metrics.observe`` (called
from the access-log hook once the response is sent, when status and byte
counts are final). Handlers stay thin, and a request costs a few counter
increments. Counters are per replica: sum them in Prometheus.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
ACTIONS = {"GET": "pull", "HEAD": "pull", "POST": "push", "PUT": "push", "PATCH": "push", "DELETE": "delete"}
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
PREFIX = "registry_auth_proxy"


class Metrics:
    """The proxy's counters; also the in-flight counts ``gc`` waits on."""

    def __init__(self, token_path: str = "/token") -> None:
        self.token_path = token_path
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.requests = Counter(f"{PREFIX}_requests", "Requests answered, by action, status and user class",
                                ["action", "status", "user"], registry=reg)
        self.bytes_in = Counter(f"{PREFIX}_received_bytes", "Request body bytes received from clients",
                                ["action"], registry=reg)
        self.bytes_out = Counter(f"{PREFIX}_sent_bytes", "Response body bytes sent to clients",
                                 ["action"], registry=reg)
        self.latency = Histogram(f"{PREFIX}_request_duration_seconds", "Time from request to last byte sent",
                                 ["action"], buckets=BUCKETS, registry=reg)
        self.auth_failures = Counter(f"{PREFIX}_auth_failures", "Requests with credentials that were refused "
                                     "(401 invalid/expired, 403 denied)", ["status"], registry=reg)
        self.throttled = Counter(f"{PREFIX}_throttled_requests", "Requests refused by login throttling",
                                 registry=reg)
        self.backend_errors = Counter(f"{PREFIX}_backend_errors", "Backend unreachable (502) or silent (504)",
                                      ["status"], registry=reg)
        self.transfers_in_flight = 0
        self.writes_in_flight = 0
        Gauge(f"{PREFIX}_inflight_requests", "Requests being handled or streamed now",
              registry=reg).set_function(lambda: self.transfers_in_flight)
        Gauge(f"{PREFIX}_inflight_writes", "Push/delete requests being handled now (gc waits for 0)",
              registry=reg).set_function(lambda: self.writes_in_flight)

    def throttle(self) -> None:
        """One request refused by login throttling (for the throttling code to call)."""
        self.throttled.inc()

    def action(self, method: str, path: str) -> str:
        if path == self.token_path:
            return "token"
        if not path.startswith("/v2"):
            return "other"
        return ACTIONS.get(method, "other")

    def observe(self, request: web.BaseRequest, response: web.StreamResponse, seconds: float, user: bool) -> None:
        """Record one finished request (status and byte counts are final here)."""
        action = self.action(request.method, request.path)
        status = response.status
        self.requests.labels(action, str(status), "authenticated" if user else "anonymous").inc()
        self.latency.labels(action).observe(seconds)
        received = request.content.total_bytes
        if received:
            self.bytes_in.labels(action).inc(received)
        if response.body_length:
            self.bytes_out.labels(action).inc(response.body_length)
        if status in (401, 403) and "Authorization" in request.headers:
            self.auth_failures.labels(str(status)).inc()
        elif status in (502, 504):
            self.backend_errors.labels(str(status)).inc()


METRICS = web.AppKey("metrics", Metrics)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def inflight(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Count requests (and writes) while their handler runs, streaming included."""
    metrics = request.app[METRICS]
    write = request.method in WRITE_METHODS and request.path.startswith("/v2")
    metrics.transfers_in_flight += 1
    if write:
        metrics.writes_in_flight += 1
    try:
        return await handler(request)
    finally:
        metrics.transfers_in_flight -= 1
        if write:
            metrics.writes_in_flight -= 1
