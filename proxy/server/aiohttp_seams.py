"""The only module that extends aiohttp's server below its application API.

aiohttp has no hook for three things the proxy needs on the public
listener, so they are built in here, at construction, never patched into
live objects:

* **JSON for parser refusals.** aiohttp's parser rejects an unknown or
  lowercase method (``FOO``, ``delete``) and malformed framing with a
  text/plain 400 before any handler runs. :meth:`GuardedHandler.handle_error`
  answers the registry's JSON error instead (a 405 for a method), rendered
  by the same function as every other proxy-made answer.
* **A connection cap** (``limits.max_connections``): a connection over the
  cap gets a 503 and is closed before aiohttp ever sees it. For TLS the
  protocol sees a connection only once the handshake is done; handshakes in
  progress are bounded by asyncio's handshake timeout and the backlog.
* **A request-head timeout** (``limits.header_timeout``, slowloris): a head
  must be complete within this many seconds from the connection's start,
  or, on a kept-alive connection, from the first byte of the next head;
  otherwise 408 and close. Idle kept-alive connections are aiohttp's
  ``keepalive_timeout``; stalled bodies are the forwarder's ``body_timeout``.

How: :class:`GuardedSite` is a :class:`aiohttp.web.BaseSite` whose listening
socket builds :class:`GuardedHandler` (a :class:`aiohttp.web.RequestHandler`
subclass) for every connection, with the same options the runner's server
has. Everything used is public API except the names in :data:`PRIVATE`,
which ``tests/proxy/server/test_aiohttp_contract.py`` checks against the
lowest and the highest aiohttp of the pin in CI.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError

from auth.errors import ProxyError
from auth.routes import API_METHODS
from proxy.config import Limits, format_host_port
from proxy.http.errors import render, render_bytes

__all__ = ["OUR_ATTRIBUTES", "PRIVATE", "ConnectionGuard", "GuardedHandler", "GuardedSite"]

log = logging.getLogger(__name__)

OUR_ATTRIBUTES = ("_guard", "_admitted", "_head_timer", "_finished")  # must not collide with aiohttp's slots
PRIVATE = {
    "aiohttp.web.RequestHandler._request_count": "incremented by data_received() once per parsed request head "
                                                 "(a parser error counts too): how we know a head completed",
}
REFUSAL_LOG_INTERVAL = 10.0

BUSY = render_bytes(ProxyError(503, "UNAVAILABLE", "too many connections to this proxy; try again shortly",
                               {"Retry-After": "1"}))
SLOW_HEAD = render_bytes(ProxyError(408, "UNSUPPORTED", "the request head took too long to arrive; "
                                    "connection closed"))


class ConnectionGuard:
    """One listener's connection count against ``limits.max_connections``, and its rate-limited log line."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.open = 0
        self.refused = 0
        self._last_log = float("-inf")

    def admit(self) -> bool:
        if self.open >= self.limits.max_connections:
            self.refused += 1
            now = time.monotonic()
            if now - self._last_log >= REFUSAL_LOG_INTERVAL:
                self._last_log = now
                log.warning("max_connections (%d) reached: refusing new connections (%d refused so far)",
                            self.limits.max_connections, self.refused)
            return False
        self.open += 1
        return True

    def release(self) -> None:
        self.open -= 1


class GuardedHandler(web.RequestHandler):
    """aiohttp's per-connection protocol plus the cap, the head timer and JSON parser errors."""

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, loop: asyncio.AbstractEventLoop,
                 **kwargs: Any) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._guard = guard
        self._admitted = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._finished = 0  # requests whose response was sent (log_access ran)

    # -- connection ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._guard.admit():
            assert isinstance(transport, asyncio.WriteTransport)
            transport.write(BUSY)
            transport.close()  # after the buffered answer is flushed; aiohttp never saw this connection
            return
        self._admitted = True
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self._cancel_head_timer()
        self._guard.release()
        super().connection_lost(exc)

    # -- the request-head timer -------------------------------------------------------
    def _pending(self) -> bool:
        """A parsed request is waiting or being handled (its body has its own timeout)."""
        return self._request_count > self._finished

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return  # refused at the cap: bytes already on their way are dropped, never parsed
        if data and self._head_timer is None and not self._pending():
            self._arm_head_timer()  # the first bytes of the next head on a kept-alive connection
        heads = self._request_count
        super().data_received(data)
        if self._request_count > heads:
            self._cancel_head_timer()  # a complete head arrived

    def log_access(self, request: web.BaseRequest, response: web.StreamResponse, time: float | None) -> None:
        self._finished += 1
        super().log_access(request, response, time)

    def _arm_head_timer(self) -> None:
        if self._head_timer is None:
            loop = asyncio.get_running_loop()
            self._head_timer = loop.call_later(self._guard.limits.header_timeout, self._head_too_slow)

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        self._head_timer = None
        transport = self.transport
        if self._pending() or transport is None:
            return
        peer = transport.get_extra_info("peername")
        log.warning("%s: request head not complete within %gs; closed", peer[0] if peer else "-",
                    self._guard.limits.header_timeout)
        if not transport.is_closing():
            transport.write(SLOW_HEAD)
        self.force_close()  # closes the transport after the buffered answer is flushed

    # -- parser refusals ----------------------------------------------------------------
    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises if a response already started
        if isinstance(exc, BadHttpMethod):
            err = ProxyError(405, "UNSUPPORTED", "unknown method; the registry API uses GET, HEAD, POST, PUT, "
                             "PATCH and DELETE (upper case)", {"Allow": API_METHODS})
        elif isinstance(exc, HttpProcessingError) and status < 500:
            err = ProxyError(status, "UNSUPPORTED", f"malformed request: {exc.message}")
        else:
            err = ProxyError(status, "UNKNOWN", "internal error in the proxy")
        response = render(err)
        response.force_close()
        return response


class GuardedSite(web.BaseSite):
    """A TCP (or TLS) listener whose connections are :class:`GuardedHandler` s.

    ``handler_options`` are the keyword arguments of ``RequestHandler``; give
    the runner the same ones, so its server and our handlers agree.
    """

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, limits: Limits,
                 handler_options: dict[str, Any], ssl_context: ssl.SSLContext | None = None,
                 backlog: int = 1024) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        server = runner.server
        assert server is not None  # BaseSite refuses a runner that is not set up
        self.host, self.port, self.backlog = host, port, backlog
        self.tls = ssl_context
        self.guard = ConnectionGuard(limits)
        self._manager = server
        self._options = handler_options
        self._listener: asyncio.Server | None = None

    @property
    def name(self) -> str:
        return f"{'https' if self.tls else 'http'}://{format_host_port(self.host, self.port)}"

    def _protocol(self) -> GuardedHandler:
        return GuardedHandler(self._manager, guard=self.guard, loop=asyncio.get_running_loop(), **self._options)

    async def start(self) -> None:
        await super().start()  # registers the site with its runner
        self._listener = await asyncio.get_running_loop().create_server(
            self._protocol, self.host, self.port, ssl=self.tls, backlog=self.backlog)
        if self.port == 0 and self._listener.sockets:  # an ephemeral port (tests): say which one
            self.port = self._listener.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()  # stop accepting; connections in flight are the runner's to drain
        await super().stop()
