"""SIGTERM with an upload in flight: its body keeps arriving through the drain, and the upload completes.

The client is a raw TLS socket, so the test decides exactly when each piece
of the body is sent: part before the signal, the rest only once the drain
has visibly started (new connections refused), slowly. The registry is
then asked directly (no proxy left) whether every byte reached it.
Before the fix aiohttp stopped reading client connections as soon as the
drain began: the rest of the body was never read, and the upload died at
the end of the grace period.
"""

from __future__ import annotations

import hashlib
import http.client
import signal
import socket
import ssl
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support.httpclient import Client, basic, pattern_stream
from tests.support.proxyproc import ProxyProcess
from tests.support.rawhttp import open_tls, read_all, read_response, responses

MARK = basic("mark", "pusherpwd")
SIZE = 8 << 20
PIECE = 256 << 10
BEFORE = 2 << 20  # sent before SIGTERM; the other 6 MiB only during the drain
GRACE = 60  # the drain must end with the upload, long before this


def _pieces(seed: bytes) -> list[bytes]:
    return list(pattern_stream(SIZE, block=PIECE, seed=seed))


def _digest(pieces: list[bytes]) -> str:
    return "sha256:" + hashlib.sha256(b"".join(pieces)).hexdigest()


def _path(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _start_upload(client: Client, repo: str) -> str:
    reply = client.request("POST", f"/v2/{repo}/blobs/uploads/", [("Authorization", MARK)], body=b"")
    assert reply.status == 202, reply.body
    return _path(reply.header("Location") or "")


def _idle_kept_alive(proxy: ProxyProcess, ca_cert: Path) -> ssl.SSLSocket:
    """A connection that has had its answer and now waits for a next request that never comes."""
    sock = open_tls(proxy, ca_cert)
    sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nAuthorization: " + MARK.encode() + b"\r\n\r\n")
    assert read_response(sock)[0] == 200
    return sock


def _wait_refused(proxy: ProxyProcess) -> None:
    """The drain has begun: the listener is closed (in every worker, and the supervisor's copy)."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((proxy.host, proxy.port), timeout=2):
                time.sleep(0.1)
        except (ConnectionRefusedError, ConnectionResetError):  # reset: caught in the closing listener's backlog
            return
    raise AssertionError("new connections were still accepted during the drain")


def _closed_by_peer(sock: ssl.SSLSocket, timeout: float = 10) -> bool:
    sock.settimeout(timeout)
    try:
        return sock.recv(1) == b""
    except (ConnectionResetError, ssl.SSLError):
        return True
    except TimeoutError:
        return False


def _drain_with_upload(proxy: ProxyProcess, ca_cert: Path, head: bytes, pieces: list[bytes],
                       frame: Callable[[bytes | None], bytes]) -> tuple[int, dict[str, str], float]:
    """Send ``head`` and the first ``BEFORE`` bytes, SIGTERM, the rest during the drain; the answer."""
    idle = _idle_kept_alive(proxy, ca_cert)
    upload = open_tls(proxy, ca_cert, timeout=GRACE)
    upload.sendall(head)
    sent, signalled = 0, 0.0
    for piece in pieces:
        if sent == BEFORE:
            time.sleep(0.3)  # the proxy has forwarded what it got: the upload is mid-body
            proxy.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            _wait_refused(proxy)
            assert _closed_by_peer(idle), "an idle kept-alive connection stayed open during the drain"
        upload.sendall(frame(piece))
        sent += len(piece)
        if sent > BEFORE:
            time.sleep(0.05)  # slow enough that most of the body arrives well after the drain began
    upload.sendall(frame(None))
    with upload:
        answer = read_all(upload, timeout=GRACE)  # the proxy closes the connection after this answer
    idle.close()
    parsed = responses(answer)
    assert len(parsed) == 1, answer[:500]
    status, headers, _body = parsed[0]
    return status, headers, signalled


def _chunk(piece: bytes | None) -> bytes:
    return b"0\r\n\r\n" if piece is None else b"%x\r\n%s\r\n" % (len(piece), piece)


def _raw(piece: bytes | None) -> bytes:
    return piece or b""


def _registry_request(url: str, method: str, path: str) -> tuple[int, bytes]:
    """Straight to the registry (plain HTTP, no auth of its own): what it holds, with no proxy in between."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=60)
    try:
        conn.request(method, path, body=b"" if method == "PUT" else None)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _blob_in_registry(registry_url: str, repo: str, digest: str) -> tuple[int, str, int]:
    status, body = _registry_request(registry_url, "GET", f"/v2/{repo}/blobs/{digest}")
    return status, "sha256:" + hashlib.sha256(body).hexdigest(), len(body)


@pytest.mark.parametrize("workers", [1, 2])
def test_chunked_patch_in_flight_completes_during_the_drain(proxy_factory, registry, tls_files, workers):
    proxy = proxy_factory(overrides={"workers": workers, "timeouts": {"grace": GRACE}})
    repo = f"drain/patch{workers}"
    pieces = _pieces(b"patch")
    location = _start_upload(Client(proxy.url, tls_files.ca_cert), repo)
    head = (f"PATCH {location} HTTP/1.1\r\nHost: {proxy.host_port}\r\nAuthorization: {MARK}\r\n"
            "Content-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    status, answer_headers, signalled = _drain_with_upload(proxy, tls_files.ca_cert, head, pieces, _chunk)
    assert status == 202, answer_headers
    assert answer_headers.get("range") == f"0-{SIZE - 1}"
    assert answer_headers.get("connection") == "close"  # its last answer: the client must not reuse it
    assert proxy.wait(GRACE / 3) == 0, "the proxy did not exit once the upload was done"
    assert time.monotonic() - signalled < GRACE / 2
    assert proxy.log_text().rstrip().endswith("stopped")
    # the proxy is gone: the registry itself finishes the upload, proving every byte reached it
    status, body = _registry_request(registry.url, "PUT", _join(_path(answer_headers["location"]), _digest(pieces)))
    assert status == 201, body
    assert _blob_in_registry(registry.url, repo, _digest(pieces)) == (200, _digest(pieces), SIZE)


@pytest.mark.parametrize("workers", [1, 2])
def test_monolithic_put_in_flight_completes_during_the_drain(proxy_factory, registry, tls_files, workers):
    proxy = proxy_factory(overrides={"workers": workers, "timeouts": {"grace": GRACE}})
    repo = f"drain/put{workers}"
    pieces = _pieces(b"put")
    location = _start_upload(Client(proxy.url, tls_files.ca_cert), repo)
    head = (f"PUT {_join(location, _digest(pieces))} HTTP/1.1\r\nHost: {proxy.host_port}\r\n"
            f"Authorization: {MARK}\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {SIZE}\r\n\r\n").encode()
    status, answer_headers, signalled = _drain_with_upload(proxy, tls_files.ca_cert, head, pieces, _raw)
    assert status == 201, answer_headers
    assert answer_headers.get("docker-content-digest") == _digest(pieces)
    assert answer_headers.get("connection") == "close"
    assert proxy.wait(GRACE / 3) == 0, "the proxy did not exit once the upload was done"
    assert time.monotonic() - signalled < GRACE / 2
    assert _blob_in_registry(registry.url, repo, _digest(pieces)) == (200, _digest(pieces), SIZE)


def _join(path: str, digest: str) -> str:
    return f"{path}{'&' if '?' in path else '?'}digest={digest.replace(':', '%3A')}"
