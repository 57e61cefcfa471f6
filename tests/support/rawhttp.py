"""Raw bytes over TLS, source-bound clients, and probes of a proxy process (/proc).

Bad-input and abuse tests must send exactly the bytes they mean (duplicate
framing headers, obs-folds, smuggled requests), which no HTTP library will,
and leak tests must look at the proxy from outside: its fds, its backend
sockets, its own task count (logged on SIGUSR1).
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import socket
import ssl
import time
from pathlib import Path

from tests.support.httpclient import Client
from tests.support.proxyproc import ProxyProcess


def tls_context(ca_cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_cert))


def open_tls(proxy: ProxyProcess, ca_cert: Path, *, source: str | None = None, timeout: float = 30,
             server_hostname: str | None = None) -> ssl.SSLSocket:
    """A TLS socket to the proxy; ``server_hostname`` None means the proxy's IP (Python sends no SNI)."""
    raw = socket.create_connection((proxy.host, proxy.port), timeout=timeout,
                                   source_address=(source, 0) if source else None)
    try:
        return tls_context(ca_cert).wrap_socket(raw, server_hostname=server_hostname or proxy.host)
    except BaseException:
        raw.close()
        raise


def read_all(sock: socket.socket, timeout: float = 15) -> bytes:
    """Read until the peer closes (or ``timeout``): the whole answer to a raw request."""
    sock.settimeout(timeout)
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except (TimeoutError, ConnectionResetError, ssl.SSLError):
            break
        if not data:
            break
        out += data
    return bytes(out)


def read_response(sock: socket.socket, timeout: float = 15) -> tuple[int, bytes]:
    """One Content-Length framed response from a kept-alive connection: (status, body)."""
    sock.settimeout(timeout)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a complete head: {buf[:200]!r}")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(head.split(b" ", 2)[1]), body


def exchange(proxy: ProxyProcess, ca_cert: Path, data: bytes, timeout: float = 15, idle: float = 1.0) -> bytes:
    """Send raw bytes; read until the proxy closes, or ``idle`` s pass quietly after a complete response
    (a kept-alive connection; any pipelined second answer comes right after the first)."""
    with open_tls(proxy, ca_cert, timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(idle if _complete(out) else max(0.1, deadline - time.monotonic()))
            try:
                chunk = sock.recv(65536)
            except (TimeoutError, ConnectionResetError, ssl.SSLError):
                break
            if not chunk:
                break
            out += chunk
        return out


def _complete(raw: bytes) -> bool:
    parsed = responses(raw)
    if not parsed:
        return False
    _status, headers, body = parsed[-1]
    return len(body) >= int(headers.get("content-length", "0"))


def responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Split a byte stream of HTTP/1.1 responses (Content-Length framed) into (status, headers, body)."""
    out = []
    rest = raw
    while rest.startswith(b"HTTP/1."):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            break
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:length]))
        rest = rest[length:]
    return out


def assert_json_error(raw: bytes, statuses: tuple[int, ...] | range = range(400, 500), case: str = "") -> int:
    """The first response is a 4xx (or one of ``statuses``) registry JSON error; returns its status."""
    parsed = responses(raw)
    assert parsed, (case, raw[:300])
    status, headers, body = parsed[0]
    assert status in statuses, (case, status, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), (case, headers)
    assert headers.get("docker-distribution-api-version") == "registry/2.0", (case, headers)
    error = json.loads(body)["errors"][0]
    assert error["code"] and error["message"]
    return status


class BoundClient(Client):
    """``Client`` whose connections leave from a chosen source address (127.0.0.2 ...)."""

    def __init__(self, base_url: str, ca_cert: Path, source: str, timeout: float = 60) -> None:
        super().__init__(base_url, ca_cert, timeout)
        self.source = source

    def connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=self.timeout,
                                           source_address=(self.source, 0))


# ------------------------------------------------------------------ process probes


def fd_count(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def established_to(pid: int, port: int) -> int:
    """ESTABLISHED TCP sockets owned by ``pid`` whose remote port is ``port`` (IPv4 loopback)."""
    inodes = _socket_inodes(pid)
    count = 0
    for line in Path(f"/proc/{pid}/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote, state, inode = fields[2], fields[3], fields[9]
        if state == "01" and int(remote.split(":")[1], 16) == port and inode in inodes:
            count += 1
    return count


_COUNTS = re.compile(r"debug: tasks=(\d+) fds=(-?\d+) connections=(\d+)")


def debug_counts(proxy: ProxyProcess, timeout: float = 10) -> dict[str, int]:
    """Ask the proxy (SIGUSR1) for its task, fd and connection counts, read from its log."""
    before = len(_COUNTS.findall(proxy.log_text()))
    proxy.send_signal(signal.SIGUSR1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = _COUNTS.findall(proxy.log_text())
        if len(found) > before:
            tasks, fds, conns = (int(x) for x in found[-1])
            return {"tasks": tasks, "fds": fds, "connections": conns}
        time.sleep(0.05)
    raise TimeoutError("the proxy did not log its debug counts after SIGUSR1")


def settle(probe, target: int, slack: int, timeout: float = 10) -> int:  # type: ignore[no-untyped-def]
    """Poll ``probe()`` until it is <= target + slack (or time runs out); return the last value."""
    deadline = time.monotonic() + timeout
    value = probe()
    while value > target + slack and time.monotonic() < deadline:
        time.sleep(0.2)
        value = probe()
    return value
