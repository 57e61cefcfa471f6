"""What operators see: the access log, Prometheus metrics and the admin listener.

All of it is recorded after a request is answered, from aiohttp's
access-log hook, or read at scrape time; the request path only keeps plain
counters (``proxy.http.runtime.Stats``).
"""

from proxy.observability.accesslog import AccessSink, make_access_logger
from proxy.observability.admin import start_admin
from proxy.observability.metrics import Metrics

__all__ = ["AccessSink", "Metrics", "make_access_logger", "start_admin"]
