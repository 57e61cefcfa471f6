"""``limits.requests_per_second`` on the request path: buckets per client address, refusals as 429.

The buckets themselves are policy (:class:`auth.ratelimit.RequestRate`,
pure and clock-injectable); this module only holds them for the app's
lifetime (``limits`` are restart-only, so one table serves every reload),
turns an empty bucket into the registry's JSON 429 with ``Retry-After`` and
counts it for the metrics. It runs first, before routing or any password
check, so a looping client costs one dictionary look-up per request.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from auth.errors import ProxyError
from auth.ratelimit import MAX_KEYS, RequestRate
from proxy.config import Limits

if TYPE_CHECKING:
    from proxy.http.runtime import Stats

__all__ = ["RequestRates"]

log = logging.getLogger(__name__)

LOG_INTERVAL = 10.0  # a flood must not become a flood of log lines too


class RequestRates:
    """The per-address request rate limit of one app; does nothing when the limit is off."""

    def __init__(self, limits: Limits, *, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        rate = limits.requests_per_second
        self.buckets = (None if rate is None else
                        RequestRate(rate, limits.requests_burst, max_keys=max_keys, clock=clock))
        self._clock = clock
        self._last_log = float("-inf")

    def check(self, address: str, stats: Stats) -> None:
        """Let the request go on, or raise the 429 telling the client when to come back."""
        if self.buckets is None:
            return
        wait = self.buckets.take(address)
        if wait is None:
            return
        stats.rate_limited += 1
        now = self._clock()
        if now - self._last_log >= LOG_INTERVAL:
            self._last_log = now
            log.warning("requests_per_second (%g, burst %d) exceeded by %s: answering 429 (%d refused so far)",
                        self.buckets.rate, self.buckets.burst, address or "-", stats.rate_limited)
        raise ProxyError(429, "TOO_MANY_REQUESTS",
                         f"too many requests from this address; retry after {wait} s", {"Retry-After": str(wait)})
