"""Failed-login throttling: the hard limits, their windows and the 429 they become, on a fake clock.

The race (checks in flight count) is in ``test_throttle_race.py``; who can
and cannot be locked out, the delay and memory in ``test_throttle_lockout.py``.
Their place in the Gate (refused before any bcrypt runs) is tested in
``tests/proxy/http/test_gate.py`` and on the real app in
``tests/proxy/observability/test_admin_throttle.py``.
"""

from __future__ import annotations

import pytest

from auth.decision import Policy
from auth.throttle import ADDRESS, PAIR, Blocked, LoginThrottle, Slot, normalize_address


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(t: LoginThrottle, address: str, user: str) -> None:
    slot = t.reserve(address, user)
    assert isinstance(slot, Slot), slot
    t.failed(slot)


def test_pair_is_refused_after_failures_until_its_window_passes() -> None:
    clock = Clock()
    t = LoginThrottle(3, 60, clock=clock)
    for _ in range(3):
        fail(t, "10.0.0.1", "mark")
    blocked = t.reserve("10.0.0.1", "mark")
    assert blocked == Blocked(PAIR, 60)
    clock.now += 59.2
    assert t.reserve("10.0.0.1", "mark") == Blocked(PAIR, 1)  # never "0 s"
    clock.now += 1
    slot = t.reserve("10.0.0.1", "mark")  # the window passed: admitted, and it starts a new one
    assert isinstance(slot, Slot)
    t.failed(slot)
    assert isinstance(t.reserve("10.0.0.1", "mark"), Slot)


def test_address_limit_counts_every_user_name() -> None:
    t = LoginThrottle(3, 300, failures_per_ip=5, clock=Clock())
    for i in range(5):
        fail(t, "10.0.0.1", f"guess{i}")  # one failure per name: no pair is near its limit
    blocked = t.reserve("10.0.0.1", "mark")
    assert isinstance(blocked, Blocked) and blocked.kind == ADDRESS
    assert isinstance(t.reserve("10.0.0.2", "mark"), Slot)  # another address is not touched


def test_the_longer_wait_is_reported_when_both_limits_are_reached() -> None:
    clock = Clock()
    t = LoginThrottle(2, 100, failures_per_ip=3, clock=clock)
    fail(t, "10.0.0.1", "a")  # the address window starts here
    clock.now += 50
    fail(t, "10.0.0.1", "mark")  # the pair window starts here
    fail(t, "10.0.0.1", "mark")
    blocked = t.reserve("10.0.0.1", "mark")
    assert blocked == Blocked(PAIR, 100)  # pair: 100 s left; address: 50 s left
    clock.now += 60  # the address window passed, the pair's has not
    assert t.reserve("10.0.0.1", "mark") == Blocked(PAIR, 40)
    assert isinstance(t.reserve("10.0.0.1", "other"), Slot)


def test_success_clears_only_its_own_pair() -> None:
    t = LoginThrottle(3, 300, failures_per_ip=100, clock=Clock())
    for _ in range(2):
        fail(t, "10.0.0.1", "mark")
    fail(t, "10.0.0.2", "mark")
    slot = t.reserve("10.0.0.1", "mark")
    assert isinstance(slot, Slot)
    t.succeeded(slot)
    pairs = {(e.address, e.user): e.failures for e in t.entries() if e.kind == PAIR}
    assert pairs == {("10.0.0.2", "mark"): 1}  # 10.0.0.1's pair forgotten, 10.0.0.2's kept
    by_address = {e.address: e.failures for e in t.entries() if e.kind == ADDRESS}
    assert by_address == {"10.0.0.1": 2, "10.0.0.2": 1}  # a success never forgives an address's spraying


def test_a_slot_resolves_once() -> None:
    t = LoginThrottle(2, 300, clock=Clock())
    slot = t.reserve("10.0.0.1", "mark")
    assert isinstance(slot, Slot)
    t.failed(slot)
    t.failed(slot)  # ignored
    t.succeeded(slot)  # ignored too: it cannot undo the failure
    (pair,) = [e for e in t.entries() if e.kind == PAIR]
    assert (pair.failures, pair.in_flight) == (1, 0)


@pytest.mark.parametrize("kwargs", [
    {"failures": 0, "window": 10}, {"failures": 1, "window": 0}, {"failures": 1, "window": 1, "failures_per_ip": 0},
    {"failures": 1, "window": 1, "slow_after": 0}, {"failures": 1, "window": 1, "max_delay": -1},
    {"failures": 1, "window": 1, "max_keys": 1},
])
def test_bad_parameters_refused(kwargs: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        LoginThrottle(**kwargs)


def test_the_429_names_the_limit_and_echoes_nothing() -> None:
    for kind, words in ((PAIR, "address+user limit"), (ADDRESS, "address limit")):
        err = Policy.throttled(Blocked(kind, 42))
        assert (err.status, err.code) == (429, "TOO_MANY_REQUESTS")
        assert err.headers["Retry-After"] == "42"
        assert words in err.message and "42 s" in err.message
    assert "whatever the user name" in Policy.throttled(Blocked(ADDRESS, 1)).message


def test_addresses_are_compared_in_canonical_form() -> None:
    assert normalize_address("2001:DB8:0:0::1") == "2001:db8::1"
    assert normalize_address("not-an-ip") == "not-an-ip"
    t = LoginThrottle(3, 300, clock=Clock())
    fail(t, "2001:db8::1", "mark")
    assert [e.address for e in t.entries(address="2001:DB8::0:1")] == ["2001:db8::1", "2001:db8::1"]
    assert t.clear(address="2001:0db8::1") == 2
