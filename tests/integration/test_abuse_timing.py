"""Through the real proxy: failed logins cost the same whatever the user's hash, and placeholder keys stop serve.

Issue 11, item 6: measured before the fix, a wrong password for a cost-12 user
took 382 ms and an unknown user 5 ms (the dummy had the file's most common
cost, 5), so response times told which names exist. Item 7: the shipped k8s
placeholder key was accepted. Timing is asserted as a ratio of medians
(interleaved samples, so machine load hits every kind alike), never as an
absolute time; the numbers are printed (``pytest -s``).
"""

from __future__ import annotations

import statistics
import time

import pytest

from auth.userfiles.hashing import hash_password
from tests.support.httpclient import Client, basic
from tests.support.tap import Tap

ROUNDS = 20
FLOOR = 0.7  # (a) and (c) must take at least this share of (b); before the fix (a) was ~0.01 of it


def _failed_login(client: Client, user: str, password: str) -> float:
    started = time.perf_counter()
    reply = client.request("GET", "/v2/", [("Authorization", basic(user, password))])
    elapsed = time.perf_counter() - started
    assert reply.status == 401, (user, reply.status)
    return elapsed


def test_unknown_and_cheap_users_fail_as_slowly_as_the_costliest(proxy_factory, tls_files, registry):
    tap = Tap(registry.port).start()
    try:
        proxy = proxy_factory(backend=tap.url, challenge="basic", start=False,
                              overrides={"throttle": {"enabled": False}})
        # a file mixing costs 5 and 12 (what Apache's default and ours make); most users at 5
        lines = [f"slow:{hash_password('slowpwd', cost=12)}", f"cheap:{hash_password('cheappwd', cost=5)}"]
        lines += [f"u{i}:{hash_password(f'pw{i}', cost=5)}" for i in range(3)]
        (proxy.workdir / "users.htpasswd").write_text("\n".join(lines) + "\n")
        (proxy.workdir / "users.groups").write_text("pusher: slow\n")
        proxy.start()
        client = Client(proxy.url, tls_files.ca_cert)
        assert client.request("GET", "/v2/", [("Authorization", basic("slow", "slowpwd"))]).status == 200
        for user in ("nobody", "slow", "cheap"):  # warm-up: TLS session, thread pool, bcrypt backend
            _failed_login(client, user, "warmup")
        tap.clear()
        kinds = {"(a) unknown user": "ghost", "(b) cost-12 user": "slow", "(c) cost-5 user": "cheap"}
        times: dict[str, list[float]] = {kind: [] for kind in kinds}
        for i in range(ROUNDS):
            for kind, user in kinds.items():
                times[kind].append(_failed_login(client, f"{user}{i}" if user == "ghost" else user, f"wrong{i}"))
        assert tap.request_heads() == []  # no failed login reached the registry
    finally:
        tap.stop()
    medians = {kind: statistics.median(values) for kind, values in times.items()}
    slow = medians["(b) cost-12 user"]
    print("median of", ROUNDS, "failed logins each: "
          + ", ".join(f"{kind} {m * 1000:.1f} ms ({m / slow:.2f}x)" for kind, m in medians.items()))
    assert medians["(a) unknown user"] >= FLOOR * slow, medians
    assert medians["(c) cost-5 user"] >= FLOOR * slow, medians


@pytest.mark.parametrize("key", [b"REPLACE: head -c 48 /dev/urandom | base64\n", b""],
                         ids=["old k8s placeholder", "shipped empty value"])
def test_serve_refuses_a_placeholder_token_key(proxy_factory, key):
    proxy = proxy_factory(start=False, overrides={"auth": {"token": {"secret_file": "token.key"}}})
    (proxy.workdir / "token.key").write_bytes(key)
    with pytest.raises(RuntimeError, match="exited"):
        proxy.start(timeout=20)
    log = proxy.log_text()
    assert "cannot start" in log and "token.key: the token key " in log, log
    assert "head -c 48 /dev/urandom | base64 >" in log
    assert proxy.returncode == 1
