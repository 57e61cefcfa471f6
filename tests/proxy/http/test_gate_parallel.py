"""Parallel logins: a CI job's concurrent requests with a correct password are not guesses.

The throttle counts checks in flight against ``throttle.failures`` so that a
burst of guesses cannot outrun it; docker, podman and skopeo send Basic on
many parallel requests (one per layer upload with ``challenge: basic``), so
identical credentials must share one check and one slot, and credentials
verified within ``auth.cache_ttl`` need none.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

from auth.credentials import Basic
from auth.decision import Origin
from auth.errors import ProxyError
from auth.throttle import Blocked, LoginThrottle
from proxy.http.gate import Gate
from tests.proxy.http.test_gate import World, world  # noqa: F401 (the fixture)

ORIGIN = Origin("https", "registry.example:5043", "192.0.2.7")


def throttled_gate(w: World, failures: int = 3) -> Gate:
    gate = w.make()
    gate.throttle = LoginThrottle(failures, 300.0, clock=w.clock)
    return gate


async def outcomes(gate: Gate, passwords: list[str]) -> list[int]:
    async def one(password: str) -> int:
        try:
            await gate.login(Basic("mark", password), ORIGIN)
        except ProxyError as err:
            return err.status
        return 200

    return list(await asyncio.gather(*(one(p) for p in passwords)))


async def test_many_parallel_correct_logins_are_never_throttled(world: World) -> None:  # noqa: F811
    gate = throttled_gate(world)
    assert await outcomes(gate, ["pusherpwd"] * 32) == [200] * 32  # one check, one slot, shared
    assert await outcomes(gate, ["pusherpwd"] * 32) == [200] * 32  # then the success cache: no slot at all


async def test_distinct_parallel_guesses_still_get_at_most_the_limit_checked(world: World) -> None:  # noqa: F811
    gate = throttled_gate(world)
    statuses = await outcomes(gate, [f"guess{i}" for i in range(20)])
    assert statuses.count(401) == 3 and statuses.count(429) == 17


async def test_one_wrong_password_sent_in_parallel_counts_once(world: World) -> None:  # noqa: F811
    gate = throttled_gate(world)
    assert await outcomes(gate, ["stale"] * 10) == [401] * 10  # one check, joined: one failure
    assert await outcomes(gate, ["pusherpwd"]) == [200]  # so the limit (3) is far from reached


class RoundTripThrottle:
    """The supervisor's throttle as a worker sees it (``workers`` > 1): every reservation is awaited."""

    def __init__(self, inner: LoginThrottle) -> None:
        self.inner = inner

    async def reserve(self, address: str, user: str, count: bool = True) -> object:
        await asyncio.sleep(0.005)  # the channel round trip: other requests run meanwhile
        return self.inner.reserve(address, user, count)

    def succeeded(self, slot: object) -> None:
        self.inner.succeeded(slot)  # type: ignore[arg-type]

    def failed(self, slot: object) -> None:
        self.inner.failed(slot)  # type: ignore[arg-type]


def slowed_throttle(w: World, failures: int = 3) -> LoginThrottle:
    """A throttle where ``mark`` already failed from elsewhere, so each of his checks first sleeps."""
    throttle = LoginThrottle(failures, 300.0, slow_after=1, max_delay=0.05, clock=w.clock)
    for i in range(3):
        slot = throttle.reserve(f"198.51.100.{i}", "mark")
        assert not isinstance(slot, Blocked)
        throttle.failed(slot)
    probe = throttle.reserve("198.51.100.99", "mark")
    assert not isinstance(probe, Blocked) and probe.delay > 0
    throttle.succeeded(probe)
    return throttle


@pytest.mark.parametrize("shape", ["round trip", "delayed user", "both"])
async def test_parallel_correct_logins_share_one_slot_whatever_comes_before_bcrypt(
        world: World, shape: str) -> None:  # noqa: F811
    """The check is registered before its first await: a reservation round trip or the user's delay
    used to leave a window in which every parallel request reserved its own slot (429 with ``workers: 2``)."""
    gate = world.make()
    inner = slowed_throttle(world) if shape != "round trip" else LoginThrottle(3, 300.0, clock=world.clock)
    gate.throttle = RoundTripThrottle(inner) if shape != "delayed user" else inner  # type: ignore[assignment]
    assert await outcomes(gate, ["pusherpwd"] * 32) == [200] * 32
    pair = [e for e in inner.entries(address=ORIGIN.client_ip) if e.user == "mark"]
    assert all(e.failures == 0 and e.in_flight == 0 for e in pair), pair


async def test_distinct_guesses_through_a_round_trip_throttle_get_at_most_the_limit(world: World) -> None:  # noqa: F811
    gate = world.make()
    gate.throttle = RoundTripThrottle(LoginThrottle(3, 300.0, clock=world.clock))  # type: ignore[assignment]
    statuses = await outcomes(gate, [f"guess{i}" for i in range(20)])
    assert statuses.count(401) == 3 and statuses.count(429) == 17


async def test_a_caller_that_leaves_does_not_abandon_the_check_the_others_wait_for(world: World) -> None:  # noqa: F811
    gate = world.make()
    inner = LoginThrottle(3, 300.0, clock=world.clock)
    gate.throttle = RoundTripThrottle(inner)  # type: ignore[assignment]
    first = asyncio.ensure_future(gate.login(Basic("mark", "pusherpwd"), ORIGIN))
    await asyncio.sleep(0)
    rest = asyncio.ensure_future(outcomes(gate, ["pusherpwd"] * 5))
    await asyncio.sleep(0)
    first.cancel()
    assert await rest == [200] * 5
    with pytest.raises(asyncio.CancelledError):
        await first
    assert [e for e in inner.entries(address=ORIGIN.client_ip) if e.failures or e.in_flight] == []


async def test_a_guesser_who_hangs_up_still_has_the_failure_counted(world: World) -> None:  # noqa: F811
    gate = world.make()
    inner = LoginThrottle(3, 300.0, clock=world.clock)
    gate.throttle = RoundTripThrottle(inner)  # type: ignore[assignment]
    for i in range(3):
        task = asyncio.ensure_future(gate.login(Basic("mark", f"guess{i}"), ORIGIN))
        await asyncio.sleep(0.01)
        task.cancel()
    while gate._checks:  # the checks run on after their callers left
        await asyncio.sleep(0.01)
    assert await outcomes(gate, ["guess-next"]) == [429]


class GoneThrottle:
    """A worker whose supervisor is gone: every reservation is refused with a 503, after a round trip."""

    async def reserve(self, address: str, user: str, count: bool = True) -> object:
        await asyncio.sleep(0.005)
        raise ProxyError(503, "UNAVAILABLE", "password checks are unavailable for a moment")


async def test_a_failed_check_is_every_waiters_error_and_never_logged_as_unretrieved(world: World) -> None:  # noqa: F811
    gate = world.make()
    gate.throttle = GoneThrottle()  # type: ignore[assignment]
    seen: list[dict[str, object]] = []
    asyncio.get_running_loop().set_exception_handler(lambda _loop, context: seen.append(context))
    assert await outcomes(gate, ["pusherpwd"] * 3) == [503] * 3
    leaver = asyncio.ensure_future(gate.login(Basic("mark", "pusherpwd"), ORIGIN))
    await asyncio.sleep(0)
    leaver.cancel()  # nobody is left to read the check's 503
    while gate._checks:
        await asyncio.sleep(0.01)
    gc.collect()
    await asyncio.sleep(0)
    assert seen == []
