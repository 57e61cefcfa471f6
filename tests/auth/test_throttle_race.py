"""The race of issue 11: checks in flight count against the limit the moment they are reserved.

The bug: the counter was read before bcrypt and written after it, so forty
simultaneous guesses all saw zero failures, all were checked, and the right
one got in. Reservations are synchronous, so on one event loop "at the same
moment" means "all reserved before any answer", which is what these tests
build, with a fake clock and a fake check.
"""

from __future__ import annotations

import asyncio
import threading

from auth.throttle import PAIR, Blocked, LoginThrottle, Slot


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_forty_reservations_before_any_answer_admit_only_failures() -> None:
    t = LoginThrottle(10, 300, clock=Clock())
    results = [t.reserve("10.0.0.1", "mark") for _ in range(40)]
    admitted = [r for r in results if isinstance(r, Slot)]
    assert len(admitted) == 10
    assert all(isinstance(r, Blocked) and r.kind == PAIR for r in results[10:])
    (pair,) = [e for e in t.entries() if e.kind == PAIR]
    assert (pair.failures, pair.in_flight, pair.seconds_until_free) == (0, 10, 300)
    for slot in admitted:
        t.failed(slot)
    assert isinstance(t.reserve("10.0.0.1", "mark"), Blocked)  # in flight became failed: still 10


def test_a_success_in_flight_frees_its_slot_and_the_pair() -> None:
    t = LoginThrottle(3, 300, clock=Clock())
    slots = [t.reserve("10.0.0.1", "mark") for _ in range(3)]
    assert isinstance(t.reserve("10.0.0.1", "mark"), Blocked)
    first, *rest = slots
    assert isinstance(first, Slot)
    t.failed(first)
    ok = rest[0]
    assert isinstance(ok, Slot)
    t.succeeded(ok)  # the right password: this pair's failures are forgiven, one check is still in flight
    assert isinstance(t.reserve("10.0.0.1", "mark"), Slot)


async def test_concurrent_wrong_then_right_guesses_on_the_event_loop() -> None:
    """Forty tasks each reserve, await a slow check, then resolve; the right guess comes last."""
    t = LoginThrottle(10, 300, clock=Clock())
    checked: list[str] = []
    release = asyncio.Event()

    async def attempt(password: str) -> str:
        slot = t.reserve("10.0.0.1", "mark")
        if isinstance(slot, Blocked):
            return "429"
        checked.append(password)
        await release.wait()  # bcrypt: every admitted check is in flight at once
        if password == "right":
            t.succeeded(slot)
            return "200"
        t.failed(slot)
        return "401"

    tasks = [asyncio.create_task(attempt(f"wrong{i}")) for i in range(39)]
    tasks.append(asyncio.create_task(attempt("right")))
    await asyncio.sleep(0)  # let all forty reserve before any check answers
    release.set()
    answers = await asyncio.gather(*tasks)
    assert len(checked) == 10 and "right" not in checked
    assert answers.count("401") == 10 and answers.count("429") == 30
    assert answers[-1] == "429"


def test_reservations_from_many_threads_never_exceed_the_limit() -> None:
    t = LoginThrottle(10, 300, failures_per_ip=25, clock=Clock())
    start = threading.Barrier(16)
    admitted: list[Slot] = []
    lock = threading.Lock()

    def worker(n: int) -> None:
        start.wait()
        for i in range(20):
            slot = t.reserve("10.0.0.1", f"user{(n + i) % 3}")
            if isinstance(slot, Slot):
                with lock:
                    admitted.append(slot)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(admitted) == 25  # the address limit, reached exactly; no pair over 10
    per_user = {u: sum(1 for s in admitted if s.user == u) for u in ("user0", "user1", "user2")}
    assert max(per_user.values()) <= 10 and sum(per_user.values()) == 25
