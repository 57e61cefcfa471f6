"""Parallel logins: a CI job's concurrent requests with a correct password are not guesses.

The throttle counts checks in flight against ``throttle.failures`` so that a
burst of guesses cannot outrun it; docker, podman and skopeo send Basic on
many parallel requests (one per layer upload with ``challenge: basic``), so
identical credentials must share one check and one slot, and credentials
verified within ``auth.cache_ttl`` need none.
"""

from __future__ import annotations

import asyncio

from auth.credentials import Basic
from auth.decision import Origin
from auth.errors import ProxyError
from auth.throttle import LoginThrottle
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
