"""Cuts off a client that takes none of a response for ``limits.send_timeout`` seconds.

Shared by the forwarder and the digest cache: both write bodies to clients
that may stop reading, and a blocked client must not hold its backend
connection and its slot for ever.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import struct
import termios
from collections.abc import Awaitable

__all__ = ["POLL", "SendWatch"]

log = logging.getLogger("proxy.http.forward")  # the name operators grep for since issue 11

POLL = 1.0  # the longest gap between two looks at a blocked client's progress (shorter for short timeouts)
TIOCOUTQ = getattr(termios, "TIOCOUTQ", None)  # Linux's SIOCOUTQ: bytes the peer has not acknowledged yet


class SendWatch:
    """Cuts a client off once it has taken none of a response for ``timeout`` seconds.

    ``await response.write()`` blocks while the socket is full, so "no
    progress" cannot be a timeout around each write: one 256 KiB chunk takes
    a 64 KiB/s reader four seconds, and the kernel's send buffer (megabytes,
    auto-tuned) frees up in bursts long after the client read. Progress is
    measured where it happens instead: while a write waits, a timer looks
    every ``poll`` seconds at the bytes not yet taken by the client (our
    transport's buffer plus the kernel's unacknowledged queue); any decrease
    is progress. Only a client that takes nothing for ``timeout`` seconds is
    cut: the transport is aborted, the blocked write fails, the caller
    releases the backend connection.
    """

    def __init__(self, transport: asyncio.Transport, timeout: float, client: str, what: str) -> None:
        self.timeout = timeout
        self.client = client  # for the log line: it names the client, not the backend
        self.what = what
        self._transport = transport
        self._fd = _fileno(transport)
        self._loop = asyncio.get_running_loop()
        self._poll = min(POLL, timeout / 4)
        self._writing = False
        self._last: int | None = None
        self._since = 0.0
        self._timer = self._loop.call_later(self._poll, self._check)

    async def send(self, write: Awaitable[None]) -> None:
        """Await one write under the watch; the start of a write counts as progress (the last one drained)."""
        self._writing, self._last, self._since = True, None, self._loop.time()
        try:
            await write
        finally:
            self._writing = False

    def close(self) -> None:
        self._timer.cancel()

    def _unsent(self) -> int:
        size = self._transport.get_write_buffer_size()
        if self._fd >= 0 and TIOCOUTQ is not None:
            try:
                size += struct.unpack("i", fcntl.ioctl(self._fd, TIOCOUTQ, b"\0\0\0\0"))[0]
            except OSError:
                self._fd = -1  # not a TCP socket after all: the buffer alone will do
        return size

    def _check(self) -> None:
        if self._transport.is_closing():
            return
        if self._writing:
            now = self._loop.time()
            unsent = self._unsent()
            if self._last is not None and unsent < self._last:
                self._since = now
            self._last = unsent
            if now - self._since >= self.timeout:
                # logged here: the handler may be cancelled by the abort (aiohttp's handler_cancellation)
                log.warning("client %s took nothing of %s for %gs (limits.send_timeout): connection closed",
                            self.client or "-", self.what, self.timeout)
                self._transport.abort()
                return
        self._timer = self._loop.call_later(self._poll, self._check)


def _fileno(transport: asyncio.Transport) -> int:
    sock = transport.get_extra_info("socket")  # TLS transports hand out the TCP socket below them
    try:
        return int(sock.fileno()) if sock is not None else -1
    except (OSError, ValueError):
        return -1
