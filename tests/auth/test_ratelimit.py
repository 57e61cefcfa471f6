"""The per-address token bucket (``limits.requests_per_second``) on a fake clock: burst, refill, memory.

Its place on the request path (the 429 with ``Retry-After``, before any
other work) is tested in ``tests/proxy/http/test_forward_send.py`` and
against the real proxy in ``tests/integration/test_abuse_slow.py``.
"""

from __future__ import annotations

import pytest

from auth.ratelimit import RequestRate, default_burst


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admitted(rate: RequestRate, key: str, n: int) -> int:
    return sum(rate.take(key) is None for _ in range(n))


def test_burst_passes_then_requests_are_refused_with_whole_seconds() -> None:
    clock = Clock()
    rate = RequestRate(5, 10, clock=clock)
    assert admitted(rate, "10.0.0.1", 10) == 10
    assert rate.take("10.0.0.1") == 1  # 0.2 s to the next token: never "0 s"
    assert admitted(rate, "10.0.0.1", 40) == 0  # refusals spend nothing and earn nothing


def test_tokens_refill_at_the_rate_and_never_beyond_the_burst() -> None:
    clock = Clock()
    rate = RequestRate(5, 10, clock=clock)
    admitted(rate, "a", 10)
    clock.now += 1.0  # five tokens back
    assert admitted(rate, "a", 20) == 5
    clock.now += 3600  # a long pause: the bucket is full, not 18,000 tokens deep
    assert admitted(rate, "a", 50) == 10


def test_a_steady_client_at_the_rate_is_never_refused() -> None:
    clock = Clock()
    rate = RequestRate(5, 10, clock=clock)
    for _ in range(1000):
        assert rate.take("ci") is None
        clock.now += 0.2


def test_retry_after_rounds_up_for_slow_rates() -> None:
    clock = Clock()
    rate = RequestRate(0.1, 1, clock=clock)  # one request per 10 s
    assert rate.take("a") is None
    assert rate.take("a") == 10
    clock.now += 7.5
    assert rate.take("a") == 3  # 2.5 s left, rounded up


def test_addresses_have_separate_buckets() -> None:
    clock = Clock()
    rate = RequestRate(1, 3, clock=clock)
    assert admitted(rate, "127.0.0.1", 10) == 3
    assert admitted(rate, "127.0.0.2", 3) == 3


def test_default_burst_is_twice_the_rate_at_least_ten() -> None:
    assert default_burst(1) == 10
    assert default_burst(5) == 10
    assert default_burst(7.5) == 15
    assert default_burst(100) == 200
    assert RequestRate(50).burst == 100


def test_idle_buckets_are_dropped_as_requests_come_in() -> None:
    clock = Clock()
    rate = RequestRate(10, 10, clock=clock)  # a bucket is full again after 1 s
    for i in range(100):
        rate.take(f"10.0.0.{i}")
    assert len(rate) == 100
    clock.now += 2.0
    for _ in range(100):
        rate.take("busy")
    assert len(rate) == 1  # the hundred idle ones went, a couple per request


def test_memory_is_capped_and_the_least_recently_seen_go_first() -> None:
    clock = Clock()
    rate = RequestRate(1, 2, max_keys=50, clock=clock)
    admitted(rate, "loop", 2)  # empty now
    for i in range(200):
        rate.take(f"10.0.{i}.1")
        if i % 10 == 0:
            rate.take("loop")  # recently seen: kept, and still empty
    assert len(rate) == 50
    assert rate.take("loop") is not None  # its empty bucket survived the churn
    assert rate.take("10.0.0.1") is None  # an old one was forgotten: a fresh, full bucket


@pytest.mark.parametrize(("rps", "burst"), [(0, 10), (-1, 10), (1, 0)])
def test_nonsense_settings_are_refused(rps: float, burst: int) -> None:
    with pytest.raises(ValueError):
        RequestRate(rps, burst)
