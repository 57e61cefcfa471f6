"""Nobody can be locked out by somebody else: the scenarios of issue 11, plus the delay and memory bounds.

Measured before the redesign: ten failures from one address refused every
user from it for five minutes (one stale CI job behind a NAT blocked every
pusher), and ten wrong passwords for ``mark`` from anywhere locked ``mark``
out everywhere.
"""

from __future__ import annotations

import pytest

from auth.throttle import ADDRESS, PAIR, USER, Blocked, LoginThrottle, Slot


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fail(t: LoginThrottle, address: str, user: str) -> None:
    slot = t.reserve(address, user)
    assert isinstance(slot, Slot), slot
    t.failed(slot)


def admitted(t: LoginThrottle, address: str, user: str) -> Slot:
    slot = t.reserve(address, user)
    assert isinstance(slot, Slot), f"{user}@{address} refused: {slot}"
    return slot


def test_a_stale_ci_job_blocks_only_its_own_user_from_its_own_address() -> None:
    t = LoginThrottle(10, 300, clock=Clock())
    for _ in range(10):
        fail(t, "192.0.2.1", "ci")  # the stale job behind the NAT
    assert isinstance(t.reserve("192.0.2.1", "ci"), Blocked)
    t.succeeded(admitted(t, "192.0.2.1", "mark"))  # every other pusher behind the NAT logs in
    t.succeeded(admitted(t, "192.0.2.1", "reader"))
    t.succeeded(admitted(t, "198.51.100.7", "ci"))  # and ci itself from elsewhere


def test_wrong_passwords_for_mark_from_anywhere_never_refuse_mark_from_a_clean_address() -> None:
    t = LoginThrottle(10, 300, slow_after=20, max_delay=2.0, clock=Clock())
    for a in range(50):  # a botnet: 10 guesses from each of 50 addresses, 500 failures for mark
        for _ in range(10):
            fail(t, f"203.0.113.{a}", "mark")
    slot = admitted(t, "192.0.2.50", "mark")  # mark at work: slowed, never refused
    assert slot.delay == 2.0
    t.succeeded(slot)
    assert isinstance(t.reserve("203.0.113.0", "mark"), Blocked)  # each bot is stopped at its own 10


def test_spraying_user_names_from_one_address_stops_at_failures_per_ip() -> None:
    t = LoginThrottle(10, 300, failures_per_ip=100, clock=Clock())
    for i in range(99):
        fail(t, "192.0.2.1", f"name{i}")
    t.succeeded(admitted(t, "192.0.2.1", "mark"))  # 99 failures behind a NAT: honest users still get in
    fail(t, "192.0.2.1", "name99")
    blocked = t.reserve("192.0.2.1", "mark")
    assert isinstance(blocked, Blocked) and blocked.kind == ADDRESS
    t.succeeded(admitted(t, "192.0.2.2", "mark"))


@pytest.mark.parametrize("slow_after, max_delay", [(20, 2.0), (4, 0.5), (5, 0.0)])
def test_delay_is_zero_until_slow_after_then_grows_and_is_capped(slow_after: int, max_delay: float) -> None:
    t = LoginThrottle(10, 300, slow_after=slow_after, max_delay=max_delay, clock=Clock())
    delays = []
    for n in range(10 * slow_after + 5):
        slot = admitted(t, f"10.0.{n // 250}.{n % 250}", "mark")  # fresh addresses: only the user key grows
        delays.append(slot.delay)
        t.failed(slot)
    assert delays[: slow_after + 1] == [0.0] * (slow_after + 1)
    assert delays == sorted(delays)  # never shrinks while failures pile up
    assert max(delays) == max_delay and all(0 <= d <= max_delay for d in delays)
    if max_delay:
        assert 0 < delays[slow_after + 1] < max_delay  # grows, not a cliff


def test_the_delay_ends_with_the_users_window() -> None:
    clock = Clock()
    t = LoginThrottle(10, 300, slow_after=1, max_delay=1.0, clock=clock)
    for a in range(3):
        fail(t, f"10.0.0.{a}", "mark")
    assert admitted(t, "10.0.1.1", "mark").delay > 0
    (user,) = [e for e in t.entries(user="mark") if e.kind == USER]
    assert user.kind == USER and user.seconds_until_free == 300 and user.delay > 0
    clock.now += 300
    assert admitted(t, "10.0.1.2", "mark").delay == 0


def test_memory_is_capped_when_a_botnet_sprays_names() -> None:
    t = LoginThrottle(10, 300, max_keys=100, clock=Clock())
    for i in range(5_000):
        fail(t, f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", f"user{i}")
    assert len(t) <= 300  # three tables of at most 100 keys
    kinds = {k: sum(1 for e in t.entries() if e.kind == k) for k in (PAIR, ADDRESS, USER)}
    assert kinds == {PAIR: 100, ADDRESS: 100, USER: 100}
    newest = {e.user for e in t.entries() if e.kind == USER}
    assert "user4999" in newest and "user0" not in newest  # the oldest were forgotten


def test_spraying_names_from_one_address_cannot_grow_memory() -> None:
    t = LoginThrottle(10, 300, failures_per_ip=100, clock=Clock())
    for i in range(10_000):
        slot = t.reserve("192.0.2.1", f"user{i}")
        if isinstance(slot, Slot):
            t.failed(slot)
    assert len(t) == 201  # 100 pairs, 100 user keys, 1 address: refused attempts store nothing


def test_expired_keys_are_dropped_as_new_ones_arrive() -> None:
    clock = Clock()
    t = LoginThrottle(10, 60, clock=clock)
    for i in range(50):
        fail(t, f"10.0.0.{i}", f"u{i}")
    clock.now += 61
    fail(t, "10.0.1.1", "new")
    assert len(t) == 3


def test_operators_list_and_clear_matching_keys() -> None:
    t = LoginThrottle(2, 300, clock=Clock())
    for _ in range(2):
        fail(t, "10.0.0.1", "ci")
    fail(t, "10.0.0.1", "mark")
    fail(t, "10.0.0.2", "mark")
    listed = t.entries()
    assert (listed[0].kind, listed[0].address, listed[0].user, listed[0].seconds_until_free) == (
        PAIR, "10.0.0.1", "ci", 300)  # refused keys first
    assert {(e.kind, e.address, e.user) for e in t.entries(user="mark")} == {
        (PAIR, "10.0.0.1", "mark"), (PAIR, "10.0.0.2", "mark"), (USER, None, "mark")}
    assert t.clear(address="10.0.0.1", user="ci") == 1  # just that pair
    t.succeeded(admitted(t, "10.0.0.1", "ci"))
    assert t.clear(address="10.0.0.1") == 2  # the address key and its mark pair
    assert t.clear(user="mark") == 2  # the other mark pair and mark's delay key
    assert {(e.kind, e.address, e.user) for e in t.entries()} == {(ADDRESS, "10.0.0.2", None), (USER, None, "ci")}
    assert t.clear(everything=True) == 2 and len(t) == 0
    with pytest.raises(ValueError):
        t.clear()


def test_a_check_in_flight_when_cleared_still_counts_its_failure() -> None:
    t = LoginThrottle(1, 300, clock=Clock())
    slot = admitted(t, "10.0.0.1", "mark")
    assert t.clear(everything=True) == 2
    t.failed(slot)
    assert isinstance(t.reserve("10.0.0.1", "mark"), Blocked)
    assert all(e.in_flight == 0 for e in t.entries())
