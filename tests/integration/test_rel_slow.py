"""Slow and greedy clients: slowloris heads, stalled bodies, max_connections (real proxy, real TLS).

Timeouts are set to 2 s in these configs; every bound below is generous
("closed within 15 s rather than never"), not a timing measurement.
"""

from __future__ import annotations

import time

from tests.support.httpclient import Client, basic
from tests.support.rawhttp import debug_counts, established_to, open_tls, read_all, read_response, responses, settle

MARK = basic("mark", "pusherpwd")
SHORT = {"limits": {"header_timeout": 2, "body_timeout": 2}}


def test_slowloris_head_is_cut_off(proxy_factory, tls_files):
    proxy = proxy_factory(overrides=SHORT)
    with open_tls(proxy, tls_files.ca_cert) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        sock.settimeout(0.5)
        answer = b""
        while time.monotonic() - started < 15:
            try:
                chunk = sock.recv(4096)  # read first: once the answer arrives, stop sending
            except TimeoutError:
                sock.sendall(b"X-Slow: a\r\n")  # keeps trickling, never ends the head
                continue
            if not chunk:
                break
            answer += chunk
        elapsed = time.monotonic() - started
    assert elapsed < 15, "a trickled head was never cut off"
    assert answer, "the connection was closed without the 408 answer"
    assert responses(answer)[0][0] == 408
    assert "request head not complete" in proxy.log_text()
    assert Client(proxy.url, tls_files.ca_cert).request("GET", "/v2/_catalog").status == 200


def test_idle_connection_without_request_is_closed(proxy_factory, tls_files):
    proxy = proxy_factory(overrides=SHORT)
    with open_tls(proxy, tls_files.ca_cert) as sock:
        started = time.monotonic()
        answer = read_all(sock, timeout=15)
        assert time.monotonic() - started < 15
    assert responses(answer)[0][0] == 408


def test_keepalive_connection_gets_a_fresh_head_timer(proxy_factory, tls_files):
    proxy = proxy_factory(overrides=SHORT)
    with open_tls(proxy, tls_files.ca_cert) as sock:
        for _ in range(3):  # three requests, 1.5 s apart: each head is complete in time
            sock.sendall(b"GET /v2/_catalog HTTP/1.1\r\nHost: x\r\n\r\n")
            assert read_response(sock)[0] == 200
            time.sleep(1.5)  # 4.5 s in all: a timer armed once per connection would have fired
        started = time.monotonic()
        sock.sendall(b"GET /v2/_catalog HTTP/1.1\r\n")  # the next head starts, then stalls
        answer = read_all(sock, timeout=15)
        assert time.monotonic() - started < 12, "a stalled head on a kept-alive connection was never cut off"
    assert responses(answer)[0][0] == 408


def test_stalled_body_is_aborted_and_backend_connection_closed(proxy_factory, tls_files, registry):
    proxy = proxy_factory(overrides=SHORT)
    client = Client(proxy.url, tls_files.ca_cert)
    start = client.request("POST", "/v2/slow/body/blobs/uploads/", [("Authorization", MARK)], body=b"")
    assert start.status == 202
    location = start.header("Location") or ""
    path = location.split(proxy.host_port, 1)[1]
    before = established_to(proxy.pid, registry.port)
    with open_tls(proxy, tls_files.ca_cert) as sock:
        sock.sendall(f"PATCH {path} HTTP/1.1\r\nHost: {proxy.host_port}\r\nAuthorization: {MARK}\r\n"
                     f"Content-Type: application/octet-stream\r\nContent-Length: 1048576\r\n\r\n".encode()
                     + b"x" * 100_000)
        started = time.monotonic()
        answer = read_all(sock, timeout=15)  # ends when the proxy closes the connection
        assert time.monotonic() - started < 12, "a stalled upload was never aborted"
    assert b" 502 " not in answer[:20]  # not the backend's fault: the client connection is just closed
    assert "upload stalled" in proxy.log_text()
    assert settle(lambda: established_to(proxy.pid, registry.port), before, 0) <= before
    assert client.request("GET", "/v2/", [("Authorization", MARK)]).status == 200


def test_max_connections_refuses_the_extra_ones(proxy_factory, tls_files):
    proxy = proxy_factory(overrides={"limits": {"max_connections": 20, "header_timeout": 60}})
    held = [open_tls(proxy, tls_files.ca_cert) for _ in range(20)]
    try:
        deadline = time.monotonic() + 10
        while debug_counts(proxy)["connections"] < 20 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert debug_counts(proxy)["connections"] == 20
        for _ in range(5):
            with open_tls(proxy, tls_files.ca_cert) as extra:
                extra.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n\r\n")
                answer = read_all(extra, timeout=10)
            parsed = responses(answer)
            assert parsed and parsed[0][0] == 503, answer[:200]
            assert parsed[0][1]["connection"] == "close"
        assert "max_connections (20) reached" in proxy.log_text()
        # the held ones still work
        held[0].sendall(b"GET /v2/_catalog HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(held[0])[0] == 200
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 10
    while debug_counts(proxy)["connections"] > 0 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert Client(proxy.url, tls_files.ca_cert).request("GET", "/v2/_catalog").status == 200
