"""Issue 11 on the real proxy: the login throttle cannot be raced and locks nobody else out.

Two client addresses: 127.0.0.1 and 127.0.0.2 both reach a proxy listening
on 127.0.0.1 (Linux routes all of 127/8 to lo), and the proxy keys its
throttle on the TCP peer. Counting bcrypt checks from outside: a checked
wrong password answers 401, a refused attempt 429 without any check.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading

from tests.support.clients import must
from tests.support.httpclient import basic
from tests.support.proxyproc import REPO_ROOT
from tests.support.rawhttp import BoundClient, tls_context
from tests.support.tap import Tap

GUESSES = 40
FAILURES = 10  # the default throttle.failures


def _guess(conn: http.client.HTTPSConnection, password: str) -> tuple[int, dict[str, str], bytes]:
    conn.request("GET", "/v2/", headers={"Authorization": basic("mark", password)})
    resp = conn.getresponse()
    return resp.status, dict(resp.getheaders()), resp.read()


def test_forty_concurrent_guesses_get_at_most_ten_checks_and_the_right_one_429(proxy_factory, tls_files, registry):
    tap = Tap(registry.port).start()
    try:
        proxy = proxy_factory(challenge="basic", backend=tap.url)
        ctx = tls_context(tls_files.ca_cert)
        conns = [http.client.HTTPSConnection(proxy.host, proxy.port, context=ctx, timeout=60)
                 for _ in range(GUESSES)]
        for conn in conns:
            conn.connect()  # forty TLS connections up before any guess is sent
        start = threading.Barrier(GUESSES - 1)
        answered = threading.Semaphore(0)
        statuses: list[int] = []
        lock = threading.Lock()

        def wrong(i: int) -> None:
            start.wait()
            status, _, _ = _guess(conns[i], f"wrong-{i}")
            with lock:
                statuses.append(status)
            answered.release()

        threads = [threading.Thread(target=wrong, args=(i,)) for i in range(GUESSES - 1)]
        for t in threads:
            t.start()
        for _ in range(FAILURES):  # ten answers in: every slot is failed or in flight, the rest still racing
            assert answered.acquire(timeout=60)
        right, headers, body = _guess(conns[-1], "pusherpwd")
        for t in threads:
            t.join(60)
        print(f"wrong guesses: {statuses.count(401)} checked (401), {statuses.count(429)} refused (429); "
              f"right guess: {right}")
        assert len(statuses) == GUESSES - 1 and set(statuses) <= {401, 429}
        assert statuses.count(401) <= FAILURES  # before the fix: 39 of 39 were checked
        assert right == 429  # before the fix: 200
        assert 1 <= int(headers["Retry-After"]) <= 300
        message = json.loads(body)["errors"][0]["message"]
        assert "address+user limit" in message and "pusherpwd" not in message and "mark" not in message
        assert tap.request_heads() == []  # no guess, checked or not, reached the registry
    finally:
        for conn in conns:
            conn.close()
        tap.stop()


def test_failures_for_mark_lock_out_neither_reader_nor_mark_elsewhere(proxy_factory, tls_files, podman):
    proxy = proxy_factory(challenge="basic")
    here = BoundClient(proxy.url, tls_files.ca_cert, "127.0.0.1")
    elsewhere = BoundClient(proxy.url, tls_files.ca_cert, "127.0.0.2")
    for i in range(FAILURES):
        assert here.request("GET", "/v2/", [("Authorization", basic("mark", f"stale-{i}"))]).status == 401
    refused = here.request("GET", "/v2/", [("Authorization", basic("mark", "pusherpwd"))])
    assert refused.status == 429 and refused.header("Retry-After")
    # the same address, another user: a stale CI job does not block every pusher behind its NAT
    assert here.request("GET", "/v2/", [("Authorization", basic("reader", "readerpwd"))]).status == 200
    must(podman.login(proxy.host_port, "reader", "readerpwd"))  # a real client, from 127.0.0.1 too
    # the same user from another address: ten wrong passwords from anywhere do not lock mark out
    assert elsewhere.request("GET", "/v2/", [("Authorization", basic("mark", "pusherpwd"))]).status == 200
    assert elsewhere.request("POST", "/v2/throttle/app/blobs/uploads/", [("Authorization", basic("mark", "pusherpwd"))],
                             body=b"").status == 202
    # and the token endpoint shares the same pair limit
    assert here.request("GET", "/token", [("Authorization", basic("mark", "pusherpwd"))]).status == 429


def test_address_limit_stops_name_spraying_from_one_address_only(proxy_factory, tls_files):
    proxy = proxy_factory(challenge="basic", overrides={"throttle": {"failures_per_ip": 5}})
    sprayer = BoundClient(proxy.url, tls_files.ca_cert, "127.0.0.3")
    other = BoundClient(proxy.url, tls_files.ca_cert, "127.0.0.1")
    for i in range(5):
        assert sprayer.request("GET", "/v2/", [("Authorization", basic(f"name{i}", "x"))]).status == 401
    refused = sprayer.request("GET", "/v2/", [("Authorization", basic("reader", "readerpwd"))])
    assert refused.status == 429
    assert "address limit" in refused.json()["errors"][0]["message"]
    assert other.request("GET", "/v2/", [("Authorization", basic("reader", "readerpwd"))]).status == 200


def _cli(proxy, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proxy", "throttle", *argv, "--config", str(proxy.config_path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, check=False)


def test_operators_list_and_clear_with_the_cli(proxy_factory, tls_files):
    proxy = proxy_factory(challenge="basic", overrides={"throttle": {"failures": 3}})
    client = BoundClient(proxy.url, tls_files.ca_cert, "127.0.0.1")
    for _ in range(3):
        assert client.request("GET", "/v2/", [("Authorization", basic("mark", "bad"))]).status == 401
    assert client.request("GET", "/v2/", [("Authorization", basic("mark", "pusherpwd"))]).status == 429
    listed = must(_cli(proxy, "list"))
    first = listed.stdout.splitlines()[1].split()
    assert first[:6] == ["address+user", "127.0.0.1", "mark", "3", "0", "3"] and first[6].endswith("s")
    data = json.loads(must(_cli(proxy, "list", "--json", "--user", "mark")).stdout)
    assert {(e["kind"], e["user"]) for e in data["entries"]} == {("address+user", "mark"), ("user", "mark")}
    assert "cleared 1 key(s)" in must(_cli(proxy, "clear", "--address", "127.0.0.1", "--user", "mark")).stdout
    assert client.request("GET", "/v2/", [("Authorization", basic("mark", "pusherpwd"))]).status == 200
    must(_cli(proxy, "clear", "--all"))
    assert json.loads(must(_cli(proxy, "list", "--json")).stdout)["entries"] == []
