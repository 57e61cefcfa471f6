"""The public listener with TLS or ``proxy_protocol.trusted``: what comes before TLS, then TLS, then HTTP.

``loop.create_server`` starts TLS on every accepted socket at once, but two
things come before the ClientHello: the PROXY header of a trusted balancer,
and, by mistake, a plain HTTP request (an ``http://`` URL for an ``https``
port). So this listener accepts plain sockets itself, reads the header
exactly (``proxy.server.proxy_protocol``), peeks at the first byte of what
follows, and only then hands the socket to asyncio with
``loop.connect_accepted_socket(ssl=...)``, which does the handshake (bounded
by ``ssl_handshake_timeout``) and attaches the HTTP protocol: public asyncio
API only, and the TLS bytes are never consumed.

Plain HTTP on the TLS port: a TLS record starts with ``0x16`` (an SSLv2
hello with a byte >= ``0x80``), an HTTP request with its ASCII method. A
letter gets a short ``400`` in plain text saying to use https (as nginx's
"The plain HTTP request was sent to HTTPS port"), one log line naming the
client (never the request bytes), and the connection is closed; without
the peek, OpenSSL's ``http request`` error made asyncio drop it silently.
The peek is one ``recv(MSG_PEEK)`` of bytes the handshake needs anyway.

The rules, per connection, all within ``limits.header_timeout``:

* from a trusted network: a v1 or v2 header is required; its client becomes
  the connection's peer. No header, a malformed one, or too slow: refused
  (closed, one log line). Closed before a byte: silent (a TCP health check).
* from anywhere else: served as a direct client, but if it opens with a
  PROXY header it is refused (closed, one log line): nobody outside the
  trusted networks may choose the address the proxy sees.

With no trusted networks (TLS without ``proxy_protocol``) no header is
looked for: every client is direct, and only the plain-HTTP peek is made.

The client is made the peer by :class:`ClientTransport`, so aiohttp's
``request.remote``, the access log, the connection caps and the policy all
see the same address, with no aiohttp internals involved.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import time
from collections.abc import Callable
from typing import Any

from auth.access import Network
from auth.clientaddr import in_networks
from proxy.http.errors import SERVER
from proxy.server.proxy_protocol import Client, NothingSent, ProxyHeaderError, read_header, readable, sends_header

__all__ = ["PLAIN_HTTP_ANSWER", "ClientTransport", "PreTLSListener", "plain_text_first"]

log = logging.getLogger(__name__)

ACCEPT_RETRY_DELAY = 1.0  # after EMFILE and friends, as asyncio's own accept loop does
OVERFLOW_LOG_INTERVAL = 10.0
PLAIN_HTTP_LINGER = 1.0  # seconds to read and drop the plain request after answering, so the answer is not reset
PLAIN_HTTP_DRAIN = 64 * 1024  # at most this much of it is read
_PLAIN_HTTP_BODY = (b"400 Bad Request: this port speaks HTTPS only, and a plain HTTP request was sent to it.\n"
                    b"Use https:// in the URL.\n")
PLAIN_HTTP_ANSWER = (
    f"HTTP/1.1 400 Bad Request\r\nServer: {SERVER}\r\nContent-Type: text/plain; charset=utf-8\r\n"
    f"Content-Length: {len(_PLAIN_HTTP_BODY)}\r\nConnection: close\r\n\r\n"
).encode() + _PLAIN_HTTP_BODY


class ClientTransport(asyncio.Transport):
    """A transport whose ``peername`` is the client a PROXY header named; everything else is the real one."""

    def __init__(self, inner: asyncio.Transport, client: Client) -> None:
        super().__init__()
        self._inner = inner
        self._client = client

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        if name == "peername":
            return self._client
        return self._inner.get_extra_info(name, default)

    def is_closing(self) -> bool:
        return self._inner.is_closing()

    def close(self) -> None:
        self._inner.close()

    def abort(self) -> None:
        self._inner.abort()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._inner.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._inner.get_protocol()

    def is_reading(self) -> bool:
        return self._inner.is_reading()

    def pause_reading(self) -> None:
        self._inner.pause_reading()

    def resume_reading(self) -> None:
        self._inner.resume_reading()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._inner.set_write_buffer_limits(high, low)

    def get_write_buffer_size(self) -> int:
        return self._inner.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._inner.get_write_buffer_limits()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._inner.write(data)

    def writelines(self, list_of_data: Any) -> None:
        self._inner.writelines(list_of_data)

    def write_eof(self) -> None:
        self._inner.write_eof()

    def can_write_eof(self) -> bool:
        return self._inner.can_write_eof()


def _listening_sockets(infos: list[tuple[Any, ...]], backlog: int) -> list[socket.socket]:
    """One non-blocking listening socket per address, as ``loop.create_server`` makes them."""
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _name, address in dict.fromkeys(infos):  # dedupe, keep order
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(backlog)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets



async def plain_text_first(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> bool:
    """Does the client open with a letter (an HTTP method) where a TLS record must start? Only peeks.

    Raises :class:`NothingSent` when it closes first. The caller puts the deadline around it.
    """
    while True:
        try:
            first = sock.recv(1, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            await readable(loop, sock)
            continue
        if not first:
            raise NothingSent("closed before sending anything")
        return first.isalpha()  # ASCII letters only: 0x16 (TLS) and >= 0x80 (SSLv2 hello) are not


class PreTLSListener:
    """Accept loop(s) for one address; ``factory(client)`` builds the HTTP protocol of each connection."""

    def __init__(self, factory: Callable[[Client | None], asyncio.Protocol], *, trusted: tuple[Network, ...],
                 ssl_context: ssl.SSLContext | None, header_timeout: float, max_pending: int) -> None:
        self.factory = factory
        self.trusted = trusted
        self.tls = ssl_context
        self.header_timeout = header_timeout
        self.max_pending = max_pending  # connections still in the header read: each holds only an fd
        self.sockets: list[socket.socket] = []
        self.refused = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: set[asyncio.Task[None]] = set()
        self._last_overflow_log = float("-inf")

    async def start(self, host: str, port: int, backlog: int, sockets: list[socket.socket] | None = None) -> None:
        """Bind and listen, or accept on ``sockets`` already listening (a worker's, inherited from the supervisor)."""
        loop = asyncio.get_running_loop()
        if sockets is None:
            infos = await loop.getaddrinfo(host or None, port, family=socket.AF_UNSPEC, type=socket.SOCK_STREAM,
                                           flags=socket.AI_PASSIVE)
            sockets = _listening_sockets(infos, backlog)
        self.sockets = sockets
        for sock in self.sockets:
            task = loop.create_task(self._accept(sock))
            self._tasks.add(task)

    def close(self) -> None:
        """Stop accepting and drop connections still in the header read; served ones are the runner's."""
        for task in (*self._tasks, *self._pending):
            task.cancel()

    async def wait_closed(self) -> None:
        await asyncio.gather(*self._tasks, *self._pending, return_exceptions=True)

    async def _accept(self, sock: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    conn, address = await loop.sock_accept(sock)
                except OSError as exc:  # out of fds or buffers: wait for some to be freed
                    log.error("accept on %s failed: %s; retrying in %gs", sock.getsockname(), exc,
                              ACCEPT_RETRY_DELAY)
                    await asyncio.sleep(ACCEPT_RETRY_DELAY)
                    continue
                if len(self._pending) >= self.max_pending:
                    conn.close()
                    self._overflow()
                    continue
                task = loop.create_task(self._admit(conn, address[0]))
                self._pending.add(task)
                task.add_done_callback(self._pending.discard)
        finally:
            sock.close()  # after sock_accept's reader is gone (it is removed when its future is cancelled)

    def _overflow(self) -> None:
        self.refused += 1
        now = time.monotonic()
        if now - self._last_overflow_log >= OVERFLOW_LOG_INTERVAL:
            self._last_overflow_log = now
            log.warning("%d connections have not yet sent what comes before TLS (PROXY header, hello): "
                        "refusing new ones (%d refused so far)", self.max_pending, self.refused)

    async def _admit(self, conn: socket.socket, peer: str) -> None:
        """Read (or rule out) the header and plain HTTP, then hand the socket to asyncio's TLS and the protocol."""
        loop = asyncio.get_running_loop()
        client: Client | None = None
        try:
            async with asyncio.timeout(self.header_timeout):
                if self.trusted and in_networks(peer, self.trusted):
                    client = await read_header(loop, conn)
                elif self.trusted and await sends_header(loop, conn):
                    raise ProxyHeaderError("a PROXY header from an untrusted source")
                plain = self.tls is not None and await plain_text_first(loop, conn)
        except (ProxyHeaderError, TimeoutError, EOFError, OSError) as exc:
            conn.close()
            self._refused(peer, exc)
            return
        except BaseException:
            conn.close()
            raise
        if plain:
            await _answer_plain_http(loop, conn, client[0] if client else peer)
            return
        try:
            await loop.connect_accepted_socket(
                lambda: self.factory(client), conn, ssl=self.tls,
                ssl_handshake_timeout=self.header_timeout if self.tls else None)
        except OSError as exc:  # TLS refused or timed out: asyncio has closed the transport
            log.debug("%s: TLS handshake failed: %s", client[0] if client else peer, exc)

    def _refused(self, peer: str, exc: BaseException) -> None:
        if not self.trusted:  # TLS only: what asyncio's handshake did silently before the peek existed
            log.debug("%s: nothing usable before TLS (%s); closed", peer, type(exc).__name__)
        elif isinstance(exc, TimeoutError):
            log.warning("proxy_protocol: %s: nothing usable within %gs; closed", peer, self.header_timeout)
        elif isinstance(exc, (NothingSent, OSError)):  # gone before a byte, or reset: nothing to refuse
            log.debug("%s: %s", peer, exc)
        else:
            log.warning("proxy_protocol: %s: %s; closed", peer, exc)


async def _answer_plain_http(loop: asyncio.AbstractEventLoop, conn: socket.socket, client: str) -> None:
    """The 400 for plain HTTP on the TLS port, then close; the client's bytes are read only to be dropped.

    Closing with the request unread would make the kernel send a reset,
    which can destroy the answer before the client reads it: so the write
    side is shut first and the request drained for up to
    :data:`PLAIN_HTTP_LINGER` seconds.
    """
    log.info("%s: plain HTTP request on the HTTPS port; answered 400 (use https://) and closed", client)
    try:
        async with asyncio.timeout(PLAIN_HTTP_LINGER):
            await loop.sock_sendall(conn, PLAIN_HTTP_ANSWER)
            conn.shutdown(socket.SHUT_WR)
            drained = 0
            while drained < PLAIN_HTTP_DRAIN:
                chunk = await loop.sock_recv(conn, 16 * 1024)
                if not chunk:
                    break
                drained += len(chunk)
    except (OSError, TimeoutError):
        pass  # best effort: the client may be gone, or still sending
    finally:
        conn.close()
