"""``workers: 2`` on the real proxy, real registry and real TLS: one instance, two processes.

Which worker takes a connection is the kernel's choice, so to send requests
to one worker the tests stop the other (SIGSTOP): a stopped process cannot
accept, and every connection opened meanwhile is accepted, and kept, by the
one still running (:func:`only`). The worker pids come from the
supervisor's ``/workers``.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.clients import must
from tests.support.httpclient import Client, basic, pattern_stream, stream_digest, upload_blob
from tests.support.proxyproc import REPO_ROOT, ProxyProcess
from tests.support.rawhttp import tls_context
from tests.support.tap import Tap

MARK = basic("mark", "pusherpwd")
WORKERS = {"workers": 2}
FAILURES = 10  # the default throttle.failures


def admin(proxy: ProxyProcess, path: str, method: str = "GET") -> tuple[int, Any]:
    request = urllib.request.Request(f"{proxy.admin_url}{path}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=20) as resp:
            body = resp.read()
            status = resp.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    return status, body.decode() if path == "/metrics" else json.loads(body)


def workers(proxy: ProxyProcess) -> list[dict[str, Any]]:
    status, body = admin(proxy, "/workers")
    assert status == 200, body
    return body["workers"]


def eventually(check: Callable[[], Any], what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g}s"
        time.sleep(0.1)
    return result


def serving(proxy: ProxyProcess) -> list[dict[str, Any]]:
    """Both workers, once both serve."""
    def both() -> list[dict[str, Any]] | None:
        found = workers(proxy)
        return found if all(w["serving"] for w in found) else None

    return eventually(both, "both serving")


@contextlib.contextmanager
def only(proxy: ProxyProcess, index: int) -> Iterator[None]:
    """Every worker but ``index`` is stopped meanwhile: connections opened now are that worker's."""
    others = [w["pid"] for w in serving(proxy) if w["index"] != index]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


def total(metrics: str, name: str, **labels: str) -> float:
    return sum(s.value for family in text_string_to_metric_families(metrics) for s in family.samples
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_push_and_pull_with_skopeo(proxy_factory, skopeo, oci_image, tmp_path):
    proxy = proxy_factory(overrides=WORKERS)
    assert len(serving(proxy)) == 2
    image = oci_image(tag="v1", layers=3)
    must(skopeo.login(proxy.host_port, "mark", "pusherpwd"))
    must(skopeo.push(image.ref, f"{proxy.host_port}/workers/app:v1"))
    must(skopeo.pull(f"{proxy.host_port}/workers/app:v1", tmp_path / "pulled", tag="v1"))
    pulled = json.loads((tmp_path / "pulled" / "index.json").read_text())["manifests"][0]["digest"]
    assert pulled == image.digest
    assert must(skopeo.inspect_digest(f"{proxy.host_port}/workers/app:v1")).stdout.strip() == image.digest
    status, metrics = admin(proxy, "/metrics")
    assert status == 200 and total(metrics, "registry_auth_proxy_requests_total", action="push") > 0


def test_a_killed_worker_is_replaced_and_serves(proxy_factory, tls_files):
    proxy = proxy_factory(overrides=WORKERS)
    client = Client(proxy.url, tls_files.ca_cert)
    victim = serving(proxy)[0]["pid"]
    os.kill(victim, signal.SIGKILL)
    fresh = eventually(lambda: (w := workers(proxy)[0])["serving"] and w["pid"] != victim and w, "a new worker 0")
    assert fresh["restarts"] == 1
    with only(proxy, 0):  # the new worker alone
        assert client.request("GET", "/v2/", [("Authorization", MARK)]).status == 200
    assert f"worker 0 (pid {victim}) was killed by SIGKILL" in proxy.log_text()
    status, body = admin(proxy, "/metrics")
    assert status == 200 and total(body, "registry_auth_proxy_worker_restarts_total") == 1


def _reload_cli(proxy: ProxyProcess) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return subprocess.run([sys.executable, "-m", "proxy", "reload", "--config", str(proxy.config_path)],
                          cwd=proxy.workdir, env=env, capture_output=True, text=True, timeout=30, check=False)


def _statuses_per_worker(proxy: ProxyProcess, client: Client, n: int = 10) -> dict[int, set[int]]:
    """``n`` anonymous reads sent to each worker alone: the statuses each answered."""
    seen: dict[int, set[int]] = {}
    for index in (0, 1):
        with only(proxy, index):
            seen[index] = {client.request("GET", "/v2/workers/nothing/tags/list").status for _ in range(n)}
    return seen


def test_reload_applies_a_policy_change_on_both_workers(proxy_factory, tls_files):
    proxy = proxy_factory(overrides=WORKERS)
    client = Client(proxy.url, tls_files.ca_cert)
    assert _statuses_per_worker(proxy, client) == {0: {404}, 1: {404}}  # anonymous pull allowed: the registry answers

    proxy.config["access"]["pull"] = ["pusher"]
    proxy.write_config()
    result = _reload_cli(proxy)  # `registry-auth-proxy reload`: SIGHUP to the supervisor, from the pid file
    assert result.returncode == 0 and f"sent SIGHUP to pid {proxy.pid}" in result.stdout, result
    eventually(lambda: all(f"[worker {i}]: SIGHUP: config reloaded" in proxy.log_text() for i in (0, 1)),
               "both workers reloaded")
    assert _statuses_per_worker(proxy, client) == {0: {401}, 1: {401}}

    proxy.config["access"]["pull"] = "anyone"
    proxy.write_config()
    proxy.send_signal(signal.SIGHUP)
    eventually(lambda: proxy.log_text().count("SIGHUP: config reloaded") >= 4, "both workers reloaded again")
    assert _statuses_per_worker(proxy, client) == {0: {404}, 1: {404}}


def _at_once_on_both_workers(proxy: ProxyProcess, ca_cert: Path, passwords: list[str]) -> list[int]:
    """``GET /v2/`` as mark with each password, all released at once, half on each worker's connections."""
    ctx = tls_context(ca_cert)
    conns: list[http.client.HTTPSConnection] = []
    try:
        for index in (0, 1):  # half the TLS connections held by each worker
            with only(proxy, index):
                for _ in range(len(passwords) // 2):
                    conn = http.client.HTTPSConnection(proxy.host, proxy.port, context=ctx, timeout=60)
                    conn.connect()
                    conns.append(conn)
        start = threading.Barrier(len(conns))
        statuses: list[int] = []
        lock = threading.Lock()

        def send(i: int) -> None:
            start.wait(30)
            conns[i].request("GET", "/v2/", headers={"Authorization": basic("mark", passwords[i])})
            resp = conns[i].getresponse()
            resp.read()
            with lock:
                statuses.append(resp.status)

        threads = [threading.Thread(target=send, args=(i,)) for i in range(len(conns))]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        return statuses
    finally:
        for conn in conns:
            conn.close()


def test_forty_guesses_across_both_workers_get_at_most_ten_checks(proxy_factory, tls_files, registry):
    tap = Tap(registry.port).start()
    try:
        proxy = proxy_factory(challenge="basic", backend=tap.url, overrides=WORKERS)
        statuses = _at_once_on_both_workers(proxy, tls_files.ca_cert, [f"wrong-{i}" for i in range(40)])
        print(f"{statuses.count(401)} checked (401), {statuses.count(429)} refused (429)")
        assert len(statuses) == 40 and set(statuses) <= {401, 429}
        assert 1 <= statuses.count(401) <= FAILURES  # one throttle for both: not 2 x 10
        assert tap.request_heads() == []  # no guess reached the registry
        status, body = admin(proxy, "/throttle?address=127.0.0.1&user=mark")
        pair = [e for e in body["entries"] if e["kind"] == "address+user"]
        assert status == 200 and len(pair) == 1 and pair[0]["failures"] == statuses.count(401)
    finally:
        tap.stop()


def test_forty_parallel_correct_logins_across_both_workers_are_never_throttled(proxy_factory, tls_files):
    """A CI job's parallel requests with the right password: one counted check per worker, not one each.

    The bench's workload 4 saw 429s here: the reservation is a round trip to
    the supervisor, and requests arriving during it each reserved a slot.
    """
    proxy = proxy_factory(challenge="basic", overrides=WORKERS)
    statuses = _at_once_on_both_workers(proxy, tls_files.ca_cert, ["pusherpwd"] * 40)
    assert sorted(statuses) == [200] * 40, {s: statuses.count(s) for s in set(statuses)}
    status, body = admin(proxy, "/throttle?address=127.0.0.1&user=mark")
    assert status == 200 and all(e["failures"] == 0 and e["in_flight"] == 0 for e in body["entries"]), body


def test_metrics_sum_the_requests_of_both_workers(proxy_factory, tls_files):
    proxy = proxy_factory(overrides=WORKERS)
    client = Client(proxy.url, tls_files.ca_cert)
    for index, n in ((0, 3), (1, 5)):
        with only(proxy, index):
            for _ in range(n):
                assert client.request("GET", "/v2/").status == 401
    def counted() -> list[dict[str, Any]] | None:
        found = workers(proxy)
        return found if [w["requests"] for w in found] == [3, 5] else None

    per_worker = eventually(counted, "3 requests on worker 0 and 5 on worker 1")
    status, metrics = admin(proxy, "/metrics")
    assert status == 200
    assert total(metrics, "registry_auth_proxy_requests_total", status="401") == 8
    assert total(metrics, "registry_auth_proxy_workers") == 2
    assert total(metrics, "process_cpu_seconds_total") > 0
    assert sum(w["requests"] for w in per_worker) == 8


def _slow_patch(client: Client, repo: str) -> tuple[http.client.HTTPSConnection, int]:
    """A chunked PATCH whose head and first MiB are sent (the rest is the caller's); the bytes sent so far."""
    start = client.request("POST", f"/v2/{repo}/blobs/uploads/", [("Authorization", MARK)], body=b"")
    assert start.status == 202, start.body
    location = urlsplit(start.header("Location") or "")
    conn = client.connect()
    conn.connect()
    conn.putrequest("PATCH", f"{location.path}?{location.query}", skip_accept_encoding=True)
    conn.putheader("Authorization", MARK)
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    _chunk(conn, 0)
    return conn, 1 << 20


def _chunk(conn: http.client.HTTPSConnection, i: int) -> None:
    data = hashlib.sha256(str(i).encode()).digest() * (1 << 15)  # 1 MiB
    conn.send(b"%x\r\n%s\r\n" % (len(data), data))


def test_inflight_sees_writes_on_either_worker(proxy_factory, tls_files):
    proxy = proxy_factory(overrides=WORKERS)
    client = Client(proxy.url, tls_files.ca_cert, timeout=120)
    uploads = []
    for index in (0, 1):
        with only(proxy, index):  # each upload is held by one worker
            uploads.append(_slow_patch(client, f"workers/inflight{index}"))
    eventually(lambda: admin(proxy, "/inflight") == (200, {"writes": 2, "requests": 2,
                                                           "workers": {"serving": 2, "configured": 2}}),
               "both workers' writes in flight, summed (what gc waits on)")
    for conn, sent in uploads:
        for i in range(1, 4):
            _chunk(conn, i)
        conn.send(b"0\r\n\r\n")
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 202 and resp.getheader("Range") == f"0-{sent * 4 - 1}"
        conn.close()
    eventually(lambda: admin(proxy, "/inflight")[1]["writes"] == 0, "no write in flight")


@pytest.mark.parametrize("n", [1, 2])
def test_sigterm_drains_transfers_on_every_worker(proxy_factory, tls_files, n):
    """Each download's last bytes arrive too: the drain waits until the buffers are written out, not only
    until the handlers have finished writing into them (which cut a download's end before)."""
    proxy = proxy_factory(overrides={"workers": n})
    client = Client(proxy.url, tls_files.ca_cert, timeout=120)
    size = 32 << 20
    digest = stream_digest(size, b"workers")
    assert upload_blob(client, "workers/drain", MARK, pattern_stream(size, seed=b"workers"), digest).status == 201
    downloads = []
    for index in range(n):
        with only(proxy, index) if n > 1 else contextlib.nullcontext():  # one download held by each worker
            conn = client.connect()
            conn.request("GET", f"/v2/workers/drain/blobs/{digest}")
            resp = conn.getresponse()
            sha = hashlib.sha256(first := resp.read(1 << 20))
            downloads.append((conn, resp, sha, len(first)))
    proxy.send_signal(signal.SIGTERM)
    refused = False
    deadline = time.monotonic() + 15
    while not refused and time.monotonic() < deadline:
        try:
            with socket.create_connection((proxy.host, proxy.port), timeout=2):
                time.sleep(0.1)
        except OSError:
            refused = True
    assert refused, "new connections are still accepted while draining"
    time.sleep(1)  # the handlers have written everything into the buffers by now: no process may exit yet
    for conn, resp, sha, got in downloads:
        while chunk := resp.read(256 << 10):
            sha.update(chunk)
            got += len(chunk)
            time.sleep(0.005)  # a reader a little slower than loopback: the end waits in the proxy's buffers
        assert (resp.status, "sha256:" + sha.hexdigest(), got) == (200, digest, size)
        conn.close()
    assert proxy.wait(60) == 0
    assert proxy.log_text().rstrip().endswith("stopped")


def test_workers_exit_when_the_supervisor_is_killed(proxy_factory):
    proxy = proxy_factory(overrides=WORKERS)
    pids = [w["pid"] for w in serving(proxy)]
    folders = {Path(path).parent for path in _unix_sockets(pids[0])}
    assert len(folders) == 1 and next(iter(folders)).name.startswith("rap-")  # the private admin socket's
    os.kill(proxy.pid, signal.SIGKILL)
    eventually(lambda: not any(Path(f"/proc/{pid}").exists() and _state(pid) != "Z" for pid in pids),
               "the workers exited after their supervisor")
    assert not any(folder.exists() for folder in folders)  # nor left its random token key behind


def _unix_sockets(pid: int) -> list[str]:
    """Paths of the unix sockets process ``pid`` has bound (from its fds and /proc/net/unix)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    paths = []
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[6] in inodes:
            paths.append(fields[7])
    return paths


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "gone"


def test_a_worker_that_cannot_start_stops_start_up_with_its_reason(proxy_factory, tmp_path):
    key = tmp_path / "token.key"
    key.write_text("changeme\n")  # refused by every worker
    proxy = proxy_factory(overrides={**WORKERS, "auth": {"token": {"secret_file": str(key)}}}, start=False)
    proxy.write_config()
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    result = subprocess.run(proxy.command(), cwd=proxy.workdir, env=env, capture_output=True, text=True,
                            timeout=90, check=False)
    assert result.returncode == 1, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert "cannot start:" in last and str(key) in last, result.stderr
