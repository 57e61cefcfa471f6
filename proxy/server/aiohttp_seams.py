"""The only module that extends aiohttp's server below its application API.

aiohttp has no hook for three things the proxy needs on the public
listener, so they are built in here, at construction, never patched into
live objects:

* **JSON for parser refusals, echoing nothing.** aiohttp's parser rejects an
  unknown or lowercase method (``FOO``, ``delete``) and malformed framing
  with a text/plain 400 that quotes the offending line (an ``Authorization``
  header with one bad byte came back verbatim) and logs it with a traceback.
  :meth:`GuardedHandler.handle_error` answers the registry's JSON error with
  a fixed message instead (a 405 for a method), rendered by the same function
  as every other proxy-made answer, and logs one line without the bytes.
* **Connection caps** (``limits.max_connections`` in all,
  ``limits.max_connections_per_ip`` per client address): a connection over
  either gets a 503 and is closed before aiohttp ever sees it. For TLS the
  protocol sees a connection only once the handshake is done, so slots are
  taken after it; a handshake in progress is bounded by
  ``ssl_handshake_timeout`` (``limits.header_timeout``): a client that never
  finishes TLS is dropped then.
  The address is the real client's: with ``proxy_protocol`` on, the one its
  header named (``proxy.server.listener``). Peers in ``trusted_proxies`` (L7
  fronts carrying many clients) are held by the global cap only.
* **A request-head timeout** (``limits.header_timeout``, slowloris): a head
  must be complete within this many seconds from the connection's start,
  or, on a kept-alive connection, from the first byte of the next head;
  otherwise 408 and close. Idle kept-alive connections are aiohttp's
  ``keepalive_timeout``; stalled bodies are the forwarder's ``body_timeout``.
* **The drain reads bodies in flight.** Once shutdown starts aiohttp drops
  all a client sends, the rest of an upload too (a blob PATCH stalled until
  the grace ran out). :meth:`GuardedSite.stop` makes its handlers drain: one
  with a request in flight feeds the parser itself until that request is
  answered; idle ones are closed at once, as before.

How: :class:`GuardedSite` is a :class:`aiohttp.web.BaseSite` whose listening
socket builds :class:`GuardedHandler` (a :class:`aiohttp.web.RequestHandler`
subclass) for every connection, with the same options the runner's server
has. With TLS or ``proxy_protocol`` the listening socket is
:class:`~proxy.server.listener.PreTLSListener`, which reads what comes
before the handshake: a PROXY header, or plain HTTP sent to the TLS port
(answered with a text 400 instead of an empty reply). Everything used is
public API except the names in :data:`PRIVATE`,
which ``tests/proxy/server/test_aiohttp_contract.py`` checks against the
lowest and the highest aiohttp of the pin in CI.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong

from auth.access import Network
from auth.errors import ProxyError
from auth.routes import API_METHODS
from proxy.config import Limits, format_host_port
from proxy.http.errors import SERVER, render, render_bytes
from proxy.server.guard import ConnectionGuard
from proxy.server.listener import ClientTransport, PreTLSListener
from proxy.server.proxy_protocol import Client

__all__ = ["OUR_ATTRIBUTES", "PRIVATE", "ConnectionGuard", "GuardedHandler", "GuardedSite"]

log = logging.getLogger(__name__)

# our attributes on the handler: they must not collide with aiohttp's slots
OUR_ATTRIBUTES = ("_guard", "_admitted", "_head_timer", "_finished", "_client", "_address", "draining")
PRIVATE = {
    "aiohttp.web.RequestHandler._request_count": "incremented by data_received() once per parsed request head "
                                                 "(a parser error counts too): how we know a head completed",
    "aiohttp.web.RequestHandler._parser": "feed_data(bytes) -> (messages, upgraded, tail) feeds the body in flight: "
                                          "the drain's way in, as data_received() drops all after close()",
}
REFUSED_LINGER = 1.0  # seconds a refused connection stays open for its 503 to be read
SLOW_HEAD = render_bytes(ProxyError(408, "UNSUPPORTED", "the request head took too long to arrive; "
                                    "connection closed"))


class GuardedHandler(web.RequestHandler):
    """aiohttp's per-connection protocol plus the caps, the head timer and JSON parser errors.

    ``client`` is the address a PROXY header named; the transport aiohttp is
    given then reports it as ``peername`` (:class:`ClientTransport`).
    """

    def __init__(self, manager: web.Server, *, guard: ConnectionGuard, loop: asyncio.AbstractEventLoop,
                 client: Client | None = None, **kwargs: Any) -> None:
        super().__init__(manager, loop=loop, **kwargs)
        self._guard = guard
        self._client = client  # named by a PROXY header: this is the peer, not the balancer
        self._address = ""
        self._admitted = False
        self._head_timer: asyncio.TimerHandle | None = None
        self._finished = 0  # requests whose response was sent (log_access ran)
        # the server is stopping: the body in flight is still read, nothing after it, and the answer being
        # written is this connection's last (``proxy.http.errors.add_api_version`` says Connection: close)
        self.draining = False

    # -- connection ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self._client is not None:
            transport = ClientTransport(transport, self._client)
        peer = transport.get_extra_info("peername")
        self._address = str(peer[0]) if isinstance(peer, (tuple, list)) and peer else ""
        refusal = self._guard.admit(self._address)
        if refusal is not None:
            self._refuse(transport, refusal)  # aiohttp never sees this connection
            return
        self._admitted = True
        super().connection_made(transport)
        self._arm_head_timer()

    def _refuse(self, transport: asyncio.Transport, answer: bytes) -> None:
        """Write the 503, then close once the client has closed or after ``REFUSED_LINGER``.

        Closing at once with the client's request unread makes the kernel
        send a reset, which can destroy the answer before the client reads it.
        """
        transport.write(answer)
        if transport.can_write_eof():
            transport.write_eof()
        # the head timer is never armed on a refused connection: its slot holds the linger
        self._head_timer = asyncio.get_running_loop().call_later(REFUSED_LINGER, transport.close)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            self._cancel_head_timer()  # the refusal's linger
            return
        self._admitted = False
        self._cancel_head_timer()
        self._guard.release(self._address)
        super().connection_lost(exc)

    # -- the request-head timer -------------------------------------------------------
    def _pending(self) -> bool:
        """A parsed request is waiting or being handled (its body has its own timeout)."""
        return self._request_count > self._finished

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return  # refused at a cap: bytes already on their way are dropped, never parsed
        if self.draining and self._pending():
            self._read_body_in_flight(data)
            return
        if data and self._head_timer is None and not self._pending():
            self._arm_head_timer()  # the first bytes of the next head on a kept-alive connection
        heads = self._request_count
        super().data_received(data)
        if self._request_count > heads:
            self._cancel_head_timer()  # a complete head arrived

    # -- the drain ------------------------------------------------------------------------
    def drain(self) -> None:
        """Serve nothing new, but read the body of the request in flight (aiohttp's ``close()`` comes next)."""
        self.draining = True

    def _read_body_in_flight(self, data: bytes) -> None:
        """Feed the parser, where aiohttp's ``data_received`` (closing) would drop the bytes.

        Empty ``data`` is flow control resuming a paused parser: it must get
        through too. A head parsed now (or a malformed one) is a request
        after the one in flight: never served, the connection closes first.
        """
        parser = self._parser
        if parser is None or self.transport is None:
            return
        try:
            parser.feed_data(data)  # new messages (heads) are dropped: nothing new is served while draining
        except HttpProcessingError as exc:
            log.debug("%s: while draining: %s", self._address or "-", type(exc).__name__)

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
        log.warning("%s: request head not complete within %gs; closed", self._address or "-",
                    self._guard.limits.header_timeout)
        if not transport.is_closing():
            transport.write(SLOW_HEAD)
        self.force_close()  # closes the transport after the buffered answer is flushed

    # -- parser refusals ----------------------------------------------------------------
    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if isinstance(exc, HttpProcessingError) and status < 500:
            return self._malformed(request, status, exc)
        super().handle_error(request, status, exc, message)  # logs our bug; raises if a response already started
        return _closing(render(ProxyError(status, "UNKNOWN", "internal error in the proxy")))

    def _malformed(self, request: web.BaseRequest, status: int, exc: HttpProcessingError) -> web.StreamResponse:
        """The parser refused the request: a fixed answer, and one log line that quotes nothing.

        aiohttp's own message (and its log line) contain the offending bytes,
        which may be a password, a token or a cookie: neither is used.
        """
        if request.writer.output_size > 0:  # as aiohttp: an answer already started cannot be replaced
            raise ConnectionError("a response was already sent; cannot answer the parser error")
        if isinstance(exc, BadHttpMethod):
            err = ProxyError(405, "UNSUPPORTED", "unknown method; the registry API uses GET, HEAD, POST, PUT, "
                             "PATCH and DELETE (upper case)", {"Allow": API_METHODS})
        elif isinstance(exc, LineTooLong):
            err = ProxyError(status, "UNSUPPORTED", "request line or header too long")
        else:
            err = ProxyError(status, "UNSUPPORTED", "malformed HTTP request")
        log.info("%s: %s (%s); answered %d and closed", self._address or "-", err.message.partition(";")[0],
                    type(exc).__name__, err.status)
        return _closing(render(err))


def _closing(response: web.Response) -> web.Response:
    """A connection-ending answer made outside the app, so without its ``on_response_prepare``.

    The ``Server`` header is set here, or aiohttp would name itself and Python with their versions.
    """
    response.headers["Server"] = SERVER
    response.force_close()
    return response


class GuardedSite(web.BaseSite):
    """A TCP (or TLS) listener whose connections are :class:`GuardedHandler` s.

    ``handler_options`` are the keyword arguments of ``RequestHandler``; give
    the runner the same ones, so its server and our handlers agree. With TLS
    or ``proxy_protocol`` (the trusted balancers' networks) the listener is
    :class:`~proxy.server.listener.PreTLSListener` (it peeks before TLS), for
    plain HTTP asyncio's own.
    """

    def __init__(self, runner: web.BaseRunner, host: str, port: int, *, limits: Limits,
                 handler_options: dict[str, Any], ssl_context: ssl.SSLContext | None = None,
                 backlog: int = 1024, proxy_protocol: tuple[Network, ...] = (),
                 trusted_proxies: tuple[Network, ...] = (), sockets: list[socket.socket] | None = None) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        server = runner.server
        assert server is not None  # BaseSite refuses a runner that is not set up
        self.host, self.port, self.backlog = host, port, backlog
        self.tls = ssl_context
        self.limits = limits
        self.proxy_protocol = proxy_protocol
        self.guard = ConnectionGuard(limits, exempt=trusted_proxies)
        self._manager = server
        self._options = handler_options
        self._sockets = sockets  # already listening (``workers``: inherited from the supervisor); None: bind here
        self._listener: asyncio.Server | PreTLSListener | None = None

    @property
    def name(self) -> str:
        return f"{'https' if self.tls else 'http'}://{format_host_port(self.host, self.port)}"

    def _protocol(self, client: Client | None = None) -> GuardedHandler:
        return GuardedHandler(self._manager, guard=self.guard, loop=asyncio.get_running_loop(), client=client,
                              **self._options)

    async def start(self) -> None:
        await super().start()  # registers the site with its runner
        if self.proxy_protocol or self.tls or self._sockets is not None:
            listener = PreTLSListener(self._protocol, trusted=self.proxy_protocol, ssl_context=self.tls,
                                      header_timeout=self.limits.header_timeout,
                                      max_pending=self.limits.max_connections)
            await listener.start(self.host, self.port, self.backlog, self._sockets)
            self._listener = listener
            sockets = [sock.getsockname() for sock in listener.sockets]
        else:  # plain HTTP (behind a TLS-terminating proxy): nothing to look at before the protocol
            server = await asyncio.get_running_loop().create_server(
                self._protocol, self.host, self.port, backlog=self.backlog)
            self._listener = server
            sockets = [sock.getsockname() for sock in server.sockets]
        if self.port == 0 and sockets:  # an ephemeral port (tests): say which one
            self.port = sockets[0][1]

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()  # stop accepting; connections in flight are the runner's to drain
            if isinstance(listener, PreTLSListener):
                await listener.wait_closed()  # only its accept loops and header reads, never the drain
        for handler in self._manager.connections:  # the listener is closed: no new one comes
            if isinstance(handler, GuardedHandler):
                handler.drain()  # before the runner's close(): from then on aiohttp drops what clients send
        await super().stop()
