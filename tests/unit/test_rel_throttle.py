"""Failed-login throttling: the counters (fake clock) and their place in the Gate (real bcrypt)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest

from auth.policy import Access
from auth.throttle import LoginThrottle
from auth.tokens import TokenAuthority
from auth.users import UserStore
from proxy.gate import Gate, Origin, Refusal
from proxy.routes import parse_route
from proxy.verify import Verifier


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


# ------------------------------------------------------------------ in the Gate


class CountingVerifier(Verifier):
    def __init__(self, store: UserStore) -> None:
        super().__init__(store, workers=1)
        self.calls = 0

    async def verify(self, user: str, password: str):  # type: ignore[no-untyped-def]
        self.calls += 1
        return await super().verify(user, password)


def _auth(user: str, password: str) -> list[str]:
    return ["Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()]


@pytest.fixture
def gate(tmp_path: Path):  # type: ignore[no-untyped-def]
    htpasswd, groups = tmp_path / "h", tmp_path / "g"
    subprocess.run(["htpasswd", "-c", "-b", "-B", "-C", "4", str(htpasswd), "mark", "pw"], check=True,
                   capture_output=True)
    groups.write_text("pusher: mark\n")
    store = UserStore(htpasswd, groups, cache_ttl=0)
    verifier = CountingVerifier(store)
    tokens = TokenAuthority(b"k" * 32, "svc", "iss", 300)
    g = Gate(access=Access(), store=store, verifier=verifier, tokens=tokens, refresh_tokens=tokens,
             mode="basic", basic_realm="r", token_path="/token", token_realm=None,
             throttle=LoginThrottle(3, 300))
    yield g
    verifier.close()


async def test_gate_refuses_with_429_before_bcrypt(gate: Gate) -> None:
    route = parse_route("POST", "/v2/a/blobs/uploads/")
    attacker, user = Origin("https", "h", "10.0.0.9"), Origin("https", "h", "10.0.0.1")
    for _ in range(3):
        with pytest.raises(Refusal) as info:
            await gate.check(route, _auth("nobody", "guess"), attacker)
        assert info.value.status == 401
    calls = gate.verifier.calls  # type: ignore[attr-defined]
    with pytest.raises(Refusal) as info:
        await gate.check(route, _auth("mark", "pw"), attacker)  # even the right password: still throttled
    refusal = info.value
    assert (refusal.status, refusal.code) == (429, "TOO_MANY_REQUESTS")
    assert refusal.retry_after is not None and 1 <= refusal.retry_after <= 300
    assert gate.verifier.calls == calls  # type: ignore[attr-defined]  # no bcrypt for a refused attempt
    assert gate.throttled == 1
    assert await gate.check(route, _auth("mark", "pw"), user) == "mark"  # another address is unaffected
