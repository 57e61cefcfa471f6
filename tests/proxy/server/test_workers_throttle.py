"""The login throttle shared by all workers: one LoginThrottle in the supervisor, reserved over each channel.

In-process: two :class:`SharedThrottle` s (two workers) talk to one
supervisor side (:class:`Reservations` around one ``LoginThrottle``)
through a loopback that delivers each line on the next loop iteration, as
a socket would. The real channel (JSON lines over a socketpair) is the
integration test's.
"""

from __future__ import annotations

import asyncio
import base64
import subprocess
from pathlib import Path
from typing import Any

import pytest

from auth.access import Access, Identity
from auth.decision import Origin, Policy
from auth.errors import ProxyError
from auth.routes import Router
from auth.throttle import ADDRESS, PAIR, Blocked, LoginThrottle
from auth.tokens import TokenAuthority
from auth.userfiles import UserStore
from proxy.http.gate import Gate
from proxy.http.runtime import Stats
from proxy.http.verify import Verifier
from proxy.server.workers.channel import encode, read_message
from proxy.server.workers.throttle import MAX_RESERVED, RemoteSlot, Reservations, SharedThrottle

FAILURES = 10


class Supervisor:
    """The supervisor's side: one throttle, one Reservations per worker, replies delivered asynchronously."""

    def __init__(self, throttle: LoginThrottle | None) -> None:
        self.throttle = throttle
        self.sent: list[list[dict[str, Any]]] = []  # what each worker sent, in order
        self.desks: list[Reservations] = []
        self.workers: list[SharedThrottle] = []
        self.up = True

    def worker(self, timeout: float = 5.0) -> SharedThrottle:
        index = len(self.workers)
        desk = Reservations()
        self.desks.append(desk)
        self.sent.append([])

        def send(message: dict[str, Any]) -> bool:
            if not self.up:
                return False
            self.sent[index].append(message)
            asyncio.get_running_loop().call_soon(self._deliver, index, message)
            return True

        shared = SharedThrottle(send, timeout=timeout)
        self.workers.append(shared)
        return shared

    def _deliver(self, index: int, message: dict[str, Any]) -> None:
        reply = self.desks[index].answer(self.throttle, message)
        if reply is not None:
            asyncio.get_running_loop().call_soon(self.workers[index].answered, reply)


async def test_forty_reservations_on_two_workers_get_at_most_ten_slots() -> None:
    supervisor = Supervisor(LoginThrottle(FAILURES, 300))
    workers = [supervisor.worker(), supervisor.worker()] * 20
    results = await asyncio.gather(*(w.reserve("10.0.0.9", "mark") for w in workers))
    held = [(w, r) for w, r in zip(workers, results, strict=True) if isinstance(r, RemoteSlot)]
    blocked = [r for r in results if isinstance(r, Blocked)]
    assert len(held) == FAILURES and len(blocked) == 30  # a throttle per worker would have given 20 slots
    assert {b.kind for b in blocked} == {PAIR}
    assert {id(w) for w, _ in held} == {id(w) for w in supervisor.workers}  # both workers got some
    assert sum(len(d) for d in supervisor.desks) == FAILURES  # in flight, held by the supervisor
    for worker, slot in held:
        worker.failed(slot)
    await asyncio.sleep(0)
    assert sum(len(d) for d in supervisor.desks) == 0
    pair = [e for e in supervisor.throttle.entries() if e.kind == PAIR]  # type: ignore[union-attr]
    assert (pair[0].failures, pair[0].in_flight) == (FAILURES, 0)
    refused = await supervisor.workers[1].reserve("10.0.0.9", "mark")
    assert isinstance(refused, Blocked) and refused.retry_after >= 1


async def test_a_right_password_frees_the_slot_and_forgets_only_its_pair() -> None:
    throttle = LoginThrottle(FAILURES, 300)
    supervisor = Supervisor(throttle)
    worker = supervisor.worker()
    wrong = await worker.reserve("10.0.0.1", "mark")
    assert isinstance(wrong, RemoteSlot)
    worker.failed(wrong)
    worker.failed(wrong)  # a second resolution is ignored, as for a local Slot
    right = await worker.reserve("10.0.0.1", "mark")
    assert isinstance(right, RemoteSlot)
    worker.succeeded(right)
    await asyncio.sleep(0)
    assert [m["op"] for m in supervisor.sent[0]] == ["reserve", "failed", "reserve", "succeeded"]
    assert not [e for e in throttle.entries() if e.kind == PAIR]  # the pair's failure is forgiven
    assert [e.failures for e in throttle.entries() if e.kind == ADDRESS] == [1]


async def test_a_dead_worker_leaves_its_checks_counted_as_failures() -> None:
    throttle = LoginThrottle(FAILURES, 300)
    supervisor = Supervisor(throttle)
    worker = supervisor.worker()
    for _ in range(4):
        assert isinstance(await worker.reserve("10.0.0.2", "mark"), RemoteSlot)
    assert supervisor.desks[0].abandon() == 4  # its channel closed: the passwords may have been checked
    pair = next(e for e in throttle.entries() if e.kind == PAIR)
    assert (pair.failures, pair.in_flight) == (4, 0)


async def test_no_supervisor_means_no_password_check() -> None:
    supervisor = Supervisor(LoginThrottle(FAILURES, 300))
    worker = supervisor.worker()
    supervisor.up = False
    with pytest.raises(ProxyError) as info:
        await worker.reserve("10.0.0.3", "mark")
    assert (info.value.status, info.value.code, info.value.headers) == (503, "UNAVAILABLE", {"Retry-After": "1"})
    worker.close()
    with pytest.raises(ProxyError):
        await worker.reserve("10.0.0.3", "mark")


async def test_closing_refuses_those_waiting() -> None:
    worker = SharedThrottle(lambda message: True)  # sent, never answered
    waiting = asyncio.ensure_future(worker.reserve("10.0.0.4", "mark"))
    await asyncio.sleep(0)
    worker.close()
    with pytest.raises(ProxyError) as info:
        await waiting
    assert info.value.status == 503


async def test_an_unanswered_reservation_times_out_closed_and_is_resolved() -> None:
    sent: list[dict[str, Any]] = []
    worker = SharedThrottle(lambda message: sent.append(message) is None, timeout=0.05)
    with pytest.raises(ProxyError) as info:
        await worker.reserve("10.0.0.5", "mark")
    assert info.value.status == 503
    assert sent == [{"op": "reserve", "id": 1, "address": "10.0.0.5", "user": "mark"}, {"op": "failed", "id": 1}]


async def test_a_cancelled_reservation_is_resolved_as_failed() -> None:
    sent: list[dict[str, Any]] = []
    worker = SharedThrottle(lambda message: sent.append(message) is None)
    waiting = asyncio.ensure_future(worker.reserve("10.0.0.6", "mark"))
    await asyncio.sleep(0)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert sent[-1] == {"op": "failed", "id": 1}


async def test_throttling_off_in_the_supervisor_lets_checks_run_and_resolves_nothing() -> None:
    supervisor = Supervisor(None)
    worker = supervisor.worker()
    slot = await worker.reserve("10.0.0.7", "mark")
    assert isinstance(slot, RemoteSlot) and not slot.held and slot.delay == 0
    worker.failed(slot)
    assert [m["op"] for m in supervisor.sent[0]] == ["reserve"]


def test_reservations_refuse_malformed_messages_and_bound_themselves() -> None:
    desk, throttle = Reservations(), LoginThrottle(FAILURES, 300, failures_per_ip=10**9)
    for bad in ({"op": "reserve"}, {"op": "reserve", "id": True, "address": "a", "user": "u"},
                {"op": "reserve", "id": 1, "address": 5, "user": "u"}, {"op": "nope", "id": 1}):
        with pytest.raises(ValueError):
            desk.answer(throttle, bad)
    assert desk.answer(throttle, {"op": "failed", "id": 99}) is None  # unknown: nothing held, nothing done
    for key in range(MAX_RESERVED):
        desk._slots[key] = (throttle, None)  # type: ignore[assignment]  # full, without 65536 real checks
    reply = desk.answer(throttle, {"op": "reserve", "id": MAX_RESERVED, "address": "a", "user": "u"})
    assert reply == {"id": MAX_RESERVED, "error": "too many checks in flight"}


async def test_the_line_protocol_is_bounded_and_survives_a_bad_line() -> None:
    reader = asyncio.StreamReader(limit=64)
    reader.feed_data(encode({"op": "ready"}))
    reader.feed_data(b"x" * 100 + b"\n")  # too long
    reader.feed_data(b"[1, 2]\n")  # not an object
    reader.feed_data(encode({"op": "reload"}))
    reader.feed_eof()
    assert await read_message(reader) == {"op": "ready"}
    with pytest.raises(ValueError):
        await read_message(reader)
    with pytest.raises(ValueError):
        await read_message(reader)
    assert await read_message(reader) == {"op": "reload"}
    assert await read_message(reader) is None


# ------------------------------------------------------------------ the gate's hook


class CountingVerifier(Verifier):
    def __init__(self, store: UserStore) -> None:
        super().__init__(store, workers=1)
        self.calls = 0

    async def verify(self, user: str, password: str) -> Identity | None:
        self.calls += 1
        return await super().verify(user, password)


def _auth(user: str, password: str) -> list[str]:
    return ["Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()]


@pytest.fixture
def gates(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Two gates (two workers) whose throttle is the one supervisor's, limit 3."""
    htpasswd, groups = tmp_path / "h", tmp_path / "g"
    subprocess.run(["htpasswd", "-c", "-b", "-B", "-C", "4", str(htpasswd), "mark", "pw"], check=True,
                   capture_output=True)
    groups.write_text("pusher: mark\n")
    store = UserStore(htpasswd, groups, cache_ttl=0)
    tokens = TokenAuthority(b"k" * 32, "svc", "iss", 300)
    policy = Policy(access=Access(), mode="basic", basic_realm="r", service="svc", token_path="/token",
                    token_realm=None)
    supervisor = Supervisor(LoginThrottle(3, 300))
    made = []
    for _ in range(2):
        verifier = CountingVerifier(store)
        made.append(Gate(policy=policy, store=store, verifier=verifier, tokens=tokens, refresh_tokens=tokens,
                         throttle=supervisor.worker(), stats=Stats()))  # type: ignore[arg-type]
    yield supervisor, made
    for gate in made:
        gate.verifier.close()


async def test_the_gate_awaits_the_shared_throttle(gates) -> None:  # type: ignore[no-untyped-def]
    supervisor, (one, two) = gates
    route = Router(token_path="/token").parse("POST", "/v2/a/blobs/uploads/")
    attacker = Origin("https", "h", "10.0.0.9")
    for gate in (one, two, one):  # three wrong passwords, spread over both workers
        with pytest.raises(ProxyError) as info:
            await gate.check(route, _auth("mark", "guess"), attacker)
        assert info.value.status == 401
    calls = one.verifier.calls + two.verifier.calls
    with pytest.raises(ProxyError) as info:
        await two.check(route, _auth("mark", "pw"), attacker)  # the limit is shared: the right one is refused
    assert (info.value.status, info.value.code) == (429, "TOO_MANY_REQUESTS")
    assert one.verifier.calls + two.verifier.calls == calls == 3 and two.stats.throttled == 1
    assert await one.check(route, _auth("mark", "pw"), Origin("https", "h", "10.0.0.1")) == \
        Identity("mark", frozenset({"pusher"}))
    supervisor.up = False
    with pytest.raises(ProxyError) as info:
        await one.check(route, _auth("mark", "pw"), Origin("https", "h", "10.0.0.1"))
    assert info.value.status == 503 and one.verifier.calls + two.verifier.calls == 4  # closed: nothing checked
