"""Failed-login throttling: the counters, on a fake clock.

Their place in the Gate (refused before any bcrypt runs) is tested in
``tests/proxy/http/test_gate.py``.
"""

from __future__ import annotations

import pytest

from auth.decision import Policy
from auth.throttle import Blocked, LoginThrottle


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_blocks_after_limit_until_window_passes() -> None:
    clock = Clock()
    t = LoginThrottle(3, 60, clock=clock)
    for _ in range(3):
        assert t.blocked("10.0.0.1", "mark") is None
        t.failure("10.0.0.1", "mark")
    blocked = t.blocked("10.0.0.1", "mark")
    assert blocked is not None and blocked.retry_after == 60
    clock.now += 59.2
    assert t.blocked("10.0.0.1", "mark").retry_after == 1  # type: ignore[union-attr]
    clock.now += 1
    assert t.blocked("10.0.0.1", "mark") is None
    t.failure("10.0.0.1", "mark")  # a new window starts with one failure
    assert t.blocked("10.0.0.1", "mark") is None


def test_per_ip_and_per_user_are_separate_keys() -> None:
    t = LoginThrottle(2, 300, clock=Clock())
    t.failure("10.0.0.1", "alice")
    t.failure("10.0.0.1", "bob")
    blocked = t.blocked("10.0.0.1", "carol")  # the address is over, whatever the user
    assert blocked is not None and blocked.key == "ip"
    assert t.blocked("10.0.0.2", "carol") is None  # another address, a fresh user: fine
    assert t.blocked("10.0.0.2", "alice") is None  # alice has one failure only
    t.failure("10.0.0.3", "alice")
    blocked = t.blocked("10.0.0.4", "alice")  # alice failed from two addresses: the user is over
    assert blocked is not None and blocked.key == "user"


def test_success_never_resets_and_other_ip_unaffected() -> None:
    t = LoginThrottle(2, 300, clock=Clock())
    t.failure("10.0.0.1", "x1")
    t.failure("10.0.0.1", "x2")
    # there is no success() at all: a correct password elsewhere cannot clear 10.0.0.1
    assert t.blocked("10.0.0.2", "mark") is None
    assert t.blocked("10.0.0.1", "mark") is not None


def test_memory_is_bounded() -> None:
    t = LoginThrottle(5, 300, max_keys=100, clock=Clock())
    for i in range(10_000):
        t.failure(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", f"user{i}")
    assert len(t) <= 100


def test_bad_parameters_refused() -> None:
    for args in ((0, 10), (1, 0)):
        with pytest.raises(ValueError):
            LoginThrottle(*args)


def test_blocked_key_text_and_the_429_it_becomes() -> None:
    assert Blocked("ip", 7).key_text == "address"
    assert Blocked("user", 7).key_text == "user name"
    err = Policy.throttled(Blocked("user", 42))
    assert (err.status, err.code) == (429, "TOO_MANY_REQUESTS")
    assert int(err.headers["Retry-After"]) == 42
    assert "user name" in err.message and "42 s" in err.message
