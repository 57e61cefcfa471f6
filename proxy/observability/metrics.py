"""Prometheus metrics for one proxy process, kept in a per-app registry.

Recorded in one place, after the fact: :meth:`Metrics.observe` runs from
aiohttp's access-log hook once the last byte is sent, when status and byte
counts are final. The request path itself only keeps plain counters
(:class:`proxy.http.runtime.Stats`: requests and writes in flight, throttled
logins), which a collector reads at scrape time. So a request costs a few
counter increments and the handlers know nothing of Prometheus. Counters are
per replica: sum them in Prometheus.
"""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from auth.routes import METHOD_ACTIONS
from auth.userfiles.robots import user_class
from proxy import version
from proxy.http.keys import ROUTE
from proxy.http.runtime import Stats
from proxy.observability.bodybytes import body_bytes

__all__ = ["PREFIX", "Metrics"]

BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
PREFIX = "registry_auth_proxy"


class _StatsCollector(Collector):
    """Exposes the request path's own counters without the request path knowing Prometheus."""

    def __init__(self, stats: Stats) -> None:
        self.stats = stats

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(f"{PREFIX}_inflight_requests", "Requests being handled or streamed now",
                                value=self.stats.requests_in_flight)
        yield GaugeMetricFamily(f"{PREFIX}_inflight_writes", "Push/delete requests being handled now "
                                "(gc waits for 0)", value=self.stats.writes_in_flight)
        yield CounterMetricFamily(f"{PREFIX}_throttled_requests", "Requests refused by login throttling",
                                  value=self.stats.throttled)
        yield CounterMetricFamily(f"{PREFIX}_rate_limited_requests", "Requests refused by "
                                  "limits.requests_per_second (429)", value=self.stats.rate_limited)
        cache = self.stats.cache
        yield CounterMetricFamily(f"{PREFIX}_cache_hits", "Requests by digest answered from memory",
                                  value=cache.hits)
        yield CounterMetricFamily(f"{PREFIX}_cache_misses", "Requests by digest the cache could not answer "
                                  "(forwarded)", value=cache.misses)
        yield CounterMetricFamily(f"{PREFIX}_cache_stored", "Bodies kept after they hashed to their digest",
                                  value=cache.stored)
        yield CounterMetricFamily(f"{PREFIX}_cache_rejected", "Forwarded bodies not kept: cut short or not "
                                  "hashing to their digest (a backend that lies)", value=cache.rejected)
        evictions = CounterMetricFamily(f"{PREFIX}_cache_evictions", "Entries dropped, by reason (lru: room, "
                                        "ttl: age, delete: a DELETE through the proxy, clear: gc)", labels=["reason"])
        for reason, n in cache.evicted.items():
            evictions.add_metric([reason], n)
        yield evictions
        yield GaugeMetricFamily(f"{PREFIX}_cache_bytes", "Bytes the cache holds (bodies, headers, overhead)",
                                value=cache.bytes)
        yield GaugeMetricFamily(f"{PREFIX}_cache_entries", "Entries the cache holds", value=cache.entries)


def action_of(request: web.BaseRequest) -> str:
    """``pull``/``push``/``delete`` as the router judged the request, ``token``, or ``other``.

    A request the router refused has no route; a ``/v2`` one is labelled by its method.
    An :class:`~auth.access.Action` is returned as itself (a ``str``): ``.value`` is
    a slow property, and the same object every time makes the cache lookups cheap.
    """
    route = request.get(ROUTE)
    if route is not None:
        return "token" if route.is_token else route.action
    if request.path.startswith("/v2"):
        return METHOD_ACTIONS.get(request.method) or "other"
    return "other"


class Metrics:
    """The proxy's Prometheus registry."""

    def __init__(self, stats: Stats) -> None:
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
        self.backend_errors = Counter(f"{PREFIX}_backend_errors", "Backend unreachable (502) or silent (504)",
                                      ["status"], registry=reg)
        # (action, status, user class) -> its counter and histogram children, and action -> its byte
        # counters: prometheus-client's labels() validates and locks on every call (~0.7 µs); a few dozen
        # combinations exist, so look them up once. Byte children are made on the first bytes only, as
        # before: labels() alone would show a series at 0.
        self._children: dict[tuple[str, int, str], tuple[Counter, Histogram]] = {}
        self._received: dict[str, Counter] = {}
        self._sent: dict[str, Counter] = {}
        reg.register(_StatsCollector(stats))
        # process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, process_start_time_seconds
        ProcessCollector(registry=reg)
        Gauge(f"{PREFIX}_build_info", "Always 1; the version is a label", ["version"],
              registry=reg).labels(version()).set(1)
        # Series alerts depend on exist at 0 from start-up: an alert on rate() needs a first sample.
        self._backend_errors = {status: self.backend_errors.labels(str(status)) for status in (502, 504)}
        self._auth_failures = {status: self.auth_failures.labels(str(status)) for status in (401, 403)}

    def observe(self, request: web.BaseRequest, response: web.StreamResponse, seconds: float,
                user: str | None) -> None:
        """Record one finished request (status and byte counts are final here).

        ``user`` is the verified name; the label is its class (person, robot,
        anonymous), never the name: names would make the series unbounded.
        """
        action = action_of(request)
        status = response.status
        key = (action, status, user_class(user))
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (self.requests.labels(action, str(status), key[2]),
                                              self.latency.labels(action))
        children[0].inc()
        children[1].observe(seconds)
        received = request.content.total_bytes
        if received:
            counter = self._received.get(action)
            if counter is None:
                counter = self._received[action] = self.bytes_in.labels(action)
            counter.inc(received)
        sent = body_bytes(request, response)  # the body only, as the access log's bytes
        if sent:
            counter = self._sent.get(action)
            if counter is None:
                counter = self._sent[action] = self.bytes_out.labels(action)
            counter.inc(sent)
        if status in (401, 403) and "Authorization" in request.headers:
            self._auth_failures[status].inc()
        elif status in (502, 504):
            self._backend_errors[status].inc()
