"""Readers that never read, and a client in a loop (issue 11 items 4 and 8), against the real registry.

Measured before the fix: 64 clients that request a 16 MiB blob and never
read it held every connection slot past every timeout (new clients got
503), and 260 of them exhausted the backend pool (a new client got no answer
for 10 s, then a 504 blaming the registry). Now ``limits.send_timeout`` cuts
such readers, and the backend pool is sized to ``max_connections``.
A client looping on one URL is held to ``limits.requests_per_second``.

The readers shrink their receive buffer so that megabytes of kernel buffer
on loopback do not stand in for a client that reads. Every bound on time is
generous ("within 60 s rather than never"), never a measurement.
"""

from __future__ import annotations

import json
import os
import re
import socket
import ssl
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tests.support.httpclient import Client, basic, put_blob
from tests.support.rawhttp import established_to, open_tls, read_response, responses, settle, tls_context
from tests.support.tap import Tap

MARK = basic("mark", "pusherpwd")
MiB = 1 << 20


def _inflight(proxy) -> int:  # type: ignore[no-untyped-def]
    with urllib.request.urlopen(proxy.admin_url + "/inflight", timeout=10) as resp:
        return int(json.loads(resp.read())["requests"])


def _eventually(probe: Callable[[], bool], timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while not probe():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


@contextmanager
def _non_readers(proxy, ca_cert, path: str, count: int, source: str = "127.0.0.1") -> Iterator[list[ssl.SSLSocket]]:  # type: ignore[no-untyped-def]
    """``count`` TLS connections that each ask for ``path`` and never read a byte of the answer."""
    held: list[ssl.SSLSocket] = []
    try:
        for _ in range(count):
            raw = socket.socket()
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
            raw.settimeout(30)
            raw.bind((source, 0))
            raw.connect((proxy.host, proxy.port))
            held.append(tls_context(ca_cert).wrap_socket(raw, server_hostname=proxy.host))
        for sock in held:  # every request goes out at once, after all the handshakes
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {proxy.host_port}\r\n\r\n".encode())
        yield held
    finally:
        for sock in held:
            sock.close()


def test_readers_that_never_read_are_cut_and_their_slots_freed(proxy_factory, tls_files, registry):
    proxy = proxy_factory(overrides={"limits": {"send_timeout": 2, "max_connections": 64,
                                                "max_connections_per_ip": 64}})
    client = Client(proxy.url, tls_files.ca_cert, timeout=120)
    digest = put_blob(client, "abuse/slow", os.urandom(16 * MiB), MARK)
    path = f"/v2/abuse/slow/blobs/{digest}"
    backend_before = established_to(proxy.pid, registry.port)
    with _non_readers(proxy, tls_files.ca_cert, path, 64):
        # every one of the 64 slots was taken, then given back: one line per reader, naming the client
        assert _eventually(lambda: len(re.findall(r"client 127\.0\.0\.1 took nothing of GET /v2/abuse/slow/blobs/"
                                                   r"sha256:\w+ for 2s \(limits.send_timeout\)",
                                                   proxy.log_text())) >= 64), proxy.log_tail(20)
        assert _eventually(lambda: _inflight(proxy) == 0)
        # the readers are still connected on their side, yet a new client gets the whole blob
        status, hexdigest, size = client.stream_download(path)
        assert (status, "sha256:" + hexdigest, size) == (200, digest, 16 * MiB)
    log = proxy.log_text()
    assert len(re.findall(r"took nothing of GET", log)) == 64
    assert "backend stream" not in log and "unreachable" not in log and "did not answer" not in log
    # the cut transfers' backend connections were closed, not left to the registry's patience
    assert settle(lambda: established_to(proxy.pid, registry.port), backend_before, 2) <= backend_before + 2


def test_backend_pool_does_not_run_out_before_the_connection_limit(proxy_factory, tls_files):
    """260 readers hold 260 backend connections (default limits: the old pool had 256); a new client is served."""
    # send_timeout only so that no reader is cut while the 260 are gathered on a slow machine
    proxy = proxy_factory(overrides={"limits": {"max_connections_per_ip": 1024, "send_timeout": 600}})
    client = Client(proxy.url, tls_files.ca_cert, timeout=120)
    digest = put_blob(client, "abuse/pool", os.urandom(16 * MiB), MARK)
    with _non_readers(proxy, tls_files.ca_cert, f"/v2/abuse/pool/blobs/{digest}", 260):
        assert _eventually(lambda: _inflight(proxy) >= 260)  # all 260 transfers hold a backend connection
        reply = client.request("GET", "/v2/abuse/pool/tags/list")  # needs one more backend connection
        assert reply.status == 404, reply.body  # the registry's own answer (no tags), not a 503/504 of ours
        assert b"NAME_UNKNOWN" in reply.body
    assert "slots busy" not in proxy.log_text()


def test_requests_per_second_limits_each_address_on_its_own(proxy_factory, tls_files, registry):
    tap = Tap(registry.port).start()
    try:
        proxy = proxy_factory(backend=tap.url, overrides={"limits": {"requests_per_second": 5}})
        request = f"GET /v2/abuse/loop/tags/list HTTP/1.1\r\nHost: {proxy.host_port}\r\n\r\n".encode()
        with open_tls(proxy, tls_files.ca_cert) as sock:
            sock.sendall(request * 50)  # a client library in a loop: 50 requests back to back
            answers = _answers(sock, 50)
        statuses = [status for status, _, _ in answers]
        refused = [(headers, json.loads(body)) for status, headers, body in answers if status == 429]
        assert statuses[:10] == [404] * 10  # the burst (twice the rate, at least 10) went to the registry
        assert refused, statuses
        assert set(statuses) == {404, 429}
        for headers, error in refused:
            assert error["errors"][0]["code"] == "TOO_MANY_REQUESTS"
            assert re.fullmatch(r"[1-9][0-9]*", headers["retry-after"]), headers  # whole seconds, >= 1
        assert len(tap.requests()) == 50 - len(refused)  # a refused request never reached the registry
        with open_tls(proxy, tls_files.ca_cert, source="127.0.0.2") as other:  # another address: its own bucket
            other.sendall(request * 10)
            assert [read_response(other)[0] for _ in range(10)] == [404] * 10
        with urllib.request.urlopen(proxy.admin_url + "/metrics", timeout=10) as resp:
            metrics = resp.read().decode()
        counted = re.search(r"^registry_auth_proxy_rate_limited_requests_total (\S+)$", metrics, re.M)
        assert counted and float(counted.group(1)) >= len(refused)
        assert "requests_per_second (5, burst 10) exceeded by 127.0.0.1" in proxy.log_text()
    finally:
        tap.stop()


def _answers(sock: ssl.SSLSocket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """``count`` Content-Length framed responses from one connection: (status, lower-case headers, body)."""
    sock.settimeout(30)
    buf = b""
    out: list[tuple[int, dict[str, str], bytes]] = []
    while len(out) < count:
        parsed = responses(buf)
        complete = [r for r in parsed if len(r[2]) >= int(r[1].get("content-length", "0"))]
        if len(complete) >= count:
            return complete[:count]
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
    return responses(buf)
