"""Loopback port helpers.

Every server a test starts listens on 127.0.0.1 on a port the kernel picked,
so parallel or repeated runs never collide with each other or with a fixed
port (5000, 5043) a developer may have in use.
"""

from __future__ import annotations

import socket
import time


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that was free on ``host`` a moment ago.

    The socket is closed before returning, so there is a small race; the
    callers (servers binding right away) accept that in exchange for being
    able to write the port into a config file before the server starts.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """True if a TCP connect to ``host:port`` succeeds right now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_port(host: str, port: int, timeout: float = 20.0) -> None:
    """Block until ``host:port`` accepts TCP connections.

    Raises TimeoutError so a server that never came up fails the test with a
    clear message instead of a confusing connection error later.
    """
    deadline = time.monotonic() + timeout
    while True:
        if port_open(host, port):
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{host}:{port} did not accept connections within {timeout} s")
        time.sleep(0.05)
