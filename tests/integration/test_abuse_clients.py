"""Abusive or unusual clients against the real proxy process, over real TLS.

* parser refusals echo nothing the client sent, in the answer or the log;
* one address cannot take every connection (``limits.max_connections_per_ip``);
* a client that never finishes TLS is dropped (``ssl_handshake_timeout``);
* ``X-Forwarded-For`` is believed from a trusted front only, and then the
  policy, the throttle and the access log all use the same address;
* PROXY headers are accepted from the trusted balancer only.

Source addresses on loopback (127.0.0.2, ...) play different clients.
"""

from __future__ import annotations

import contextlib
import re
import socket
import struct
import time

import pytest

from tests.support.httpclient import basic
from tests.support.rawhttp import (
    BoundClient,
    assert_json_error,
    debug_counts,
    exchange,
    open_tls,
    read_all,
    responses,
    tls_context,
)

MARK = basic("mark", "pusherpwd")
PING = b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


def _access_lines(proxy, address: str) -> list[str]:
    return re.findall(rf"^{re.escape(address)} - .*$", proxy.log_text(), re.M)


def _wait_for(condition, what: str, timeout: float = 15) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


# ------------------------------------------------------------------------------- no echo


SECRET_LINES = {
    "basic": (b"Authorization: Basic bWFyazpwdXNoZXJwd2Q=\x01", b"bWFyazpwdXNoZXJwd2Q"),
    "bearer": (b"Authorization: Bearer eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJtYXJrIn0\x01.c2ln", b"eyJzdWIiOiJtYXJrIn0"),
    "cookie": (b"Cookie: session=Zm9vYmFyc2VjcmV0\x01", b"Zm9vYmFyc2VjcmV0"),
    "name": (b"X-Pass\x01word: cHVzaGVycHdk", b"cHVzaGVycHdk"),
}


def test_parser_refusals_echo_nothing_in_the_answer_or_the_log(tapped, tls_files):
    proxy, tap = tapped
    for case, (line, secret) in SECRET_LINES.items():
        raw = exchange(proxy, tls_files.ca_cert, b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\n" + line + b"\r\n\r\n")
        assert assert_json_error(raw, (400,), case) == 400
        assert responses(raw)[0][2].count(b"malformed HTTP request") == 1, (case, raw)
        assert secret not in raw, case
    _wait_for(lambda: proxy.log_text().count("malformed HTTP request") >= len(SECRET_LINES), "refusals logged")
    log = proxy.log_text()
    for case, (_line, secret) in SECRET_LINES.items():
        assert secret.decode() not in log, case
    assert log.count("malformed HTTP request") == len(SECRET_LINES)  # one line per refusal ...
    assert "Traceback" not in log and " ERROR " not in log  # ... and no traceback
    assert tap.requests() == []  # nothing reached the registry


# ------------------------------------------------------------------------------- per-address cap


def test_one_address_cannot_take_every_connection(proxy_factory, tls_files):
    proxy = proxy_factory(overrides={"limits": {"max_connections_per_ip": 3}})
    baseline = debug_counts(proxy)["connections"]
    held = [open_tls(proxy, tls_files.ca_cert, source="127.0.0.2") for _ in range(3)]
    try:
        _wait_for(lambda: debug_counts(proxy)["connections"] >= baseline + 3, "three connections held")
        with open_tls(proxy, tls_files.ca_cert, source="127.0.0.2") as extra:
            extra.sendall(PING)
            raw = read_all(extra)
        assert assert_json_error(raw, (503,)) == 503
        _status, headers, body = responses(raw)[0]
        assert headers["retry-after"] == "5" and headers["connection"] == "close"
        assert b"too many connections from your address" in body
        # another address is served meanwhile
        other = BoundClient(proxy.url, tls_files.ca_cert, "127.0.0.3")
        assert other.request("GET", "/v2/", [("Authorization", MARK)]).status == 200
        # a closed connection frees its slot
        held.pop().close()
        _wait_for(lambda: debug_counts(proxy)["connections"] <= baseline + 2, "slot released")
        again = BoundClient(proxy.url, tls_files.ca_cert, "127.0.0.2")
        assert again.request("GET", "/v2/", [("Authorization", MARK)]).status == 200
    finally:
        for sock in held:
            sock.close()
    assert "max_connections_per_ip (3) reached by 127.0.0.2" in proxy.log_text()


def test_a_client_that_never_finishes_tls_is_dropped(proxy_factory):
    proxy = proxy_factory(overrides={"limits": {"header_timeout": 1}})
    silent = socket.create_connection((proxy.host, proxy.port), source_address=("127.0.0.2", 0))
    partial = socket.create_connection((proxy.host, proxy.port), source_address=("127.0.0.2", 0))
    partial.sendall(b"\x16\x03\x01\x02\x00\x01")  # the start of a ClientHello, never finished
    try:
        for sock in (silent, partial):
            sock.settimeout(20)  # generous: the proxy gives up after ~1 s
            with contextlib.suppress(ConnectionResetError):  # closed with our bytes unread: the same verdict
                assert sock.recv(1024) == b""
    finally:
        silent.close()
        partial.close()
    assert debug_counts(proxy)["connections"] == 0


# ------------------------------------------------------------------------------- X-Forwarded-For


def test_forwarded_for_is_believed_from_a_trusted_front_only(proxy_factory, tls_files):
    access = {"pull": {"who": "anyone", "from": ["203.0.113.0/24"]}, "push": ["pusher"], "delete": ["pusher"]}
    proxy = proxy_factory(access=access, challenge="basic", overrides={
        "trusted_proxies": ["127.0.0.5/32"], "throttle": {"failures": 2, "window": 300}})
    front = BoundClient(proxy.url, tls_files.ca_cert, "127.0.0.5")
    direct = BoundClient(proxy.url, tls_files.ca_cert, "127.0.0.2")
    # the policy: pulls only from 203.0.113.0/24, which only the front can vouch for
    tags = "/v2/xff/img/tags/list"  # allowed: the registry answers 404 (no such repository); refused: 403
    assert front.request("GET", tags, [("X-Forwarded-For", "203.0.113.9")]).status == 404
    assert direct.request("GET", tags, [("X-Forwarded-For", "203.0.113.9")]).status == 403
    spoofed = [("X-Forwarded-For", "203.0.113.9, 198.51.100.4")]  # the client wrote the left one itself
    assert front.request("GET", tags, spoofed).status == 403
    # the throttle: failures behind the front count for the client the front named
    wrong = [("Authorization", basic("mark", "nope"))]
    for _ in range(2):
        assert front.request("GET", "/v2/", [*wrong, ("X-Forwarded-For", "198.51.100.7")]).status == 401
    assert front.request("GET", "/v2/", [("Authorization", MARK), ("X-Forwarded-For", "198.51.100.7")]).status == 429
    assert front.request("GET", "/v2/", [("Authorization", MARK), ("X-Forwarded-For", "198.51.100.8")]).status == 200
    assert front.request("GET", "/v2/", [("Authorization", MARK)]).status == 200  # the front itself
    # the access log: the same addresses
    # the last request's line is written after its answer: wait for it, the others came before
    _wait_for(lambda: len(_access_lines(proxy, "127.0.0.5")) == 1, "access line for the front itself")
    assert len(_access_lines(proxy, "198.51.100.8")) == 1
    assert len(_access_lines(proxy, "203.0.113.9")) == 1
    assert len(_access_lines(proxy, "198.51.100.7")) == 3
    assert len(_access_lines(proxy, "127.0.0.2")) == 1
    assert len(_access_lines(proxy, "198.51.100.4")) == 1
    assert len(_access_lines(proxy, "127.0.0.5")) == 1


# ------------------------------------------------------------------------------- PROXY protocol


def _v2(client: str, port: int = 40000) -> bytes:
    payload = socket.inet_aton(client) + socket.inet_aton("127.0.0.1") + struct.pack("!HH", port, 443)
    return b"\r\n\r\n\x00\r\nQUIT\n\x21\x11" + struct.pack("!H", len(payload)) + payload


def _tls_after(proxy, tls_files, source: str, preamble: bytes) -> bytes:
    raw = socket.create_connection((proxy.host, proxy.port), timeout=20, source_address=(source, 0))
    try:
        raw.sendall(preamble)
        with tls_context(tls_files.ca_cert).wrap_socket(raw, server_hostname=proxy.host) as sock:
            sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: " + MARK.encode() +
                         b"\r\nConnection: close\r\n\r\n")
            return read_all(sock)
    finally:
        raw.close()


def test_proxy_headers_only_from_the_trusted_balancer(proxy_factory, tls_files):
    proxy = proxy_factory(overrides={"proxy_protocol": {"trusted": ["127.0.0.6/32"]}})
    # the balancer: header, then TLS; the proxy serves and logs the client it named
    assert _tls_after(proxy, tls_files, "127.0.0.6", _v2("192.0.2.44")).startswith(b"HTTP/1.1 200")
    _wait_for(lambda: len(_access_lines(proxy, "192.0.2.44")) == 1, "access line for the header's client")
    # anyone else sending a header is refused: closed before TLS, one log line
    with pytest.raises(OSError):  # the handshake meets a closed socket
        _tls_after(proxy, tls_files, "127.0.0.2", _v2("192.0.2.45"))
    # the balancer without a header is refused too
    with pytest.raises(OSError):
        _tls_after(proxy, tls_files, "127.0.0.6", b"")
    _wait_for(lambda: proxy.log_text().count("proxy_protocol: ") == 2, "two refusal lines")
    log = proxy.log_text()
    assert "proxy_protocol: 127.0.0.2: a PROXY header from an untrusted source; closed" in log
    assert "proxy_protocol: 127.0.0.6: no PROXY header from a trusted source; closed" in log
    assert not _access_lines(proxy, "192.0.2.45") and not _access_lines(proxy, "127.0.0.6")
    # a direct client without a header is an ordinary client
    direct = BoundClient(proxy.url, tls_files.ca_cert, "127.0.0.2")
    assert direct.request("GET", "/v2/", [("Authorization", MARK)]).status == 200
    _wait_for(lambda: len(_access_lines(proxy, "127.0.0.2")) == 1, "access line for the direct client")
