"""Connection limits aiohttp does not have: a connection cap and a request-head timeout.

Both live in the per-connection protocol (aiohttp's ``RequestHandler``),
because that is where a connection starts and where its bytes arrive:

* ``limits.max_connections``: when a connection is made and the server
  already holds that many, it gets a 503 JSON error and is closed at once.
  The count is aiohttp's own table of live connections, so it can never
  drift. For TLS the protocol only sees a connection once the handshake is
  done; handshakes in progress are bounded by asyncio's 60 s handshake
  timeout and the listen backlog.
* ``limits.header_timeout`` (slowloris): a request head must be complete
  within this many seconds from the connection's start, or, on a kept-alive
  connection, from the first byte of the next head. Otherwise the client
  gets a 408 and the connection is closed. Idle kept-alive connections are
  aiohttp's ``keepalive_timeout``; stalled bodies are ``forward``'s
  ``body_timeout``.

The server's handler factory is swapped for one that builds this subclass
(``install``), the same way ``lowlevel`` turns aiohttp's parser errors into
JSON errors.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from proxy.config import Limits
from proxy.errors import API_VERSION, API_VERSION_HEADER, error_body
from proxy.lowlevel import JsonErrorHandler

log = logging.getLogger("registry_auth_proxy.limits")

REFUSAL_LOG_INTERVAL = 10.0


def canned_response(status: int, reason: str, code: str, message: str, extra: str = "") -> bytes:
    """A complete HTTP/1.1 error response written straight to the transport."""
    body = error_body(code, message)
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
        f"{API_VERSION_HEADER}: {API_VERSION}\r\n{extra}Connection: close\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


BUSY = canned_response(503, "Service Unavailable", "UNAVAILABLE",
                       "too many connections to this proxy; try again shortly", "Retry-After: 1\r\n")
SLOW_HEAD = canned_response(408, "Request Timeout", "UNSUPPORTED",
                            "the request head took too long to arrive; connection closed")


class LimitedServer(web.Server):
    """aiohttp's protocol factory, building :class:`LimitedHandler` with our limits."""

    limits: Limits
    refused: int
    _last_refusal_log: float

    def __call__(self) -> RequestHandler:
        handler = LimitedHandler(self, loop=self._loop, **self._kwargs)
        handler.limits = self.limits
        return handler

    def note_refusal(self) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._last_refusal_log >= REFUSAL_LOG_INTERVAL:
            self._last_refusal_log = now
            log.warning("max_connections (%d) reached: refusing new connections (%d refused so far)",
                        self.limits.max_connections, self.refused)


class LimitedHandler(JsonErrorHandler):
    __slots__ = ("_head_timer", "limits")

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._head_timer: asyncio.TimerHandle | None = None
        self.limits = Limits()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        manager = self._manager
        super().connection_made(transport)
        if isinstance(manager, LimitedServer) and len(manager.connections) > self.limits.max_connections:
            manager.note_refusal()
            self._close_with(BUSY)
            return
        self._arm_head_timer()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self._messages:  # a complete head arrived
            self._cancel_head_timer()
        elif self._waiter is not None and not self._waiter.done() and self._head_timer is None:
            self._arm_head_timer()  # the first bytes of the next head on a kept-alive connection

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            self._head_timer = self._loop.call_later(self.limits.header_timeout, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        if self._messages or self._current_request is not None or self.transport is None:
            return  # a request is being handled: its body has its own timeout
        peer = self.transport.get_extra_info("peername")
        log.warning("%s: request head not complete within %gs; closed", peer[0] if peer else "-",
                    self.limits.header_timeout)
        self._close_with(SLOW_HEAD)

    def _close_with(self, response: bytes) -> None:
        transport = self.transport
        if transport is not None and not transport.is_closing():
            transport.write(response)
        self.force_close()  # closes the transport after the buffered response is flushed


def install(runner: web.BaseRunner, limits: Limits) -> None:
    """Call after ``runner.setup()`` and before any site starts."""
    server = runner.server
    if server is None:
        raise RuntimeError("runner is not set up")
    server.__class__ = LimitedServer
    assert isinstance(server, LimitedServer)
    server.limits = limits
    server.refused = 0
    server._last_refusal_log = float("-inf")


def debug_counts(runner: web.BaseRunner) -> str:
    """``tasks=N fds=M connections=K``: what leak tests compare (logged on SIGUSR1)."""
    tasks = len(asyncio.all_tasks())
    try:
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = -1
    connections = len(runner.server.connections) if runner.server is not None else 0
    return f"tasks={tasks} fds={fds} connections={connections}"
