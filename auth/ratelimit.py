"""Per-address request rate limiting: one token bucket for each client address.

Why: a client library stuck in a loop (70,311 ``tags/list`` in two minutes
from one address) costs the registry as much as a small fleet. A bucket
holds up to ``burst`` tokens and refills at ``rate`` tokens a second; each
request spends one, and a request that finds the bucket empty is refused
with the seconds until the next token (``Retry-After``). The burst lets an
ordinary ``docker pull`` (a dozen requests at once) through untouched while
a steady loop is held to ``rate``.

Memory is bounded: an address's bucket is dropped once it has been idle
long enough to be full again (a full bucket and no bucket mean the same),
and at most ``max_keys`` addresses are tracked; past that the least
recently seen are forgotten first (an attacker cycling through addresses
can push entries out, but never grow memory). Buckets live in one process:
every replica limits on its own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["MAX_KEYS", "RequestRate", "default_burst"]

MAX_KEYS = 100_000
SWEEP = 2  # idle buckets dropped per request, at most: amortised clean-up, no timer


def default_burst(rate: float) -> int:
    """Twice the rate, at least 10: enough for one client's parallel pull to start at once."""
    return max(10, math.ceil(2 * rate))


class RequestRate:
    """Token buckets keyed by client address; thread-safe; ``clock`` is injectable for tests."""

    def __init__(
        self,
        rate: float,
        burst: int | None = None,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        burst = default_burst(rate) if burst is None else burst
        if rate <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate > 0, burst >= 1 and max_keys >= 1 are required")
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._refill_time = burst / rate  # an idle bucket is full again after this long
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (tokens left, when they were counted); ordered by last request, oldest first
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def take(self, key: str) -> int | None:
        """Spend one of ``key``'s tokens: None if the request may go on, else whole seconds to wait (>= 1)."""
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + max(0.0, now - stamp) * self.rate)
            if tokens >= 1.0:
                tokens -= 1.0
                wait = None
            else:
                wait = max(1, math.ceil((1.0 - tokens) / self.rate))
            self._buckets[key] = (tokens, now)  # re-inserted last: most recently seen
            self._sweep(now)
        return wait

    def _sweep(self, now: float) -> None:
        """Drop the oldest buckets that are full again, then enforce ``max_keys``."""
        for _ in range(SWEEP):
            oldest = next(iter(self._buckets))
            _tokens, stamp = self._buckets[oldest]
            if now - stamp < self._refill_time:
                break  # the oldest is not idle long enough, so no other one is
            del self._buckets[oldest]
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
