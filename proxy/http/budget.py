"""One memory budget for response bodies in flight, shared by every transfer.

A streamed body sits in a few buffers on its way through: the backend
socket's read (the transport asks the kernel for up to ``max_size`` at
once), aiohttp's read buffer (paused at twice ``read_bufsize``), the chunk
in hand, and the client side's TLS and write buffers (one chunk, encrypted).
At 256 KiB each, which one transfer needs to keep up with a fast link, that
is about 2.3 MiB per connection: 463 MiB for 200 concurrent pulls. A fixed
smaller size would cost the single pull its throughput, so the size is a
share instead: :data:`BUDGET` divided by the transfers in flight, between
:data:`FLOOR` and :data:`CEILING`, rounded down to a power of two (so the
allocator reuses blocks). One pull gets the full 256 KiB; 200 get 32 KiB
each, which still moves hundreds of MB/s in total.

The size is asked afresh for every chunk, so a transfer that started alone
shrinks when a storm arrives and grows back when it passes. Single
threaded (one event loop per process), so plain integers need no lock.
"""

from __future__ import annotations

import asyncio
from asyncio import sslproto
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["BUDGET", "CEILING", "FLOOR", "TLS_READ", "Budget", "bound_tls_reads"]

CEILING = 256 * 1024  # one transfer alone: what keeps a single pull at full speed
FLOOR = 16 * 1024  # never less: one TLS record; smaller costs CPU per byte for no memory worth having
BUDGET = 8 * 1024 * 1024  # bytes of chunk size shared by all transfers in flight
TLS_READ = 64 * 1024  # ciphertext read per recv on a client TLS connection (asyncio's default: 256 KiB)


class Budget:
    """Counts transfers in flight and tells each how big its buffers may be now."""

    def __init__(self, total: int = BUDGET, floor: int = FLOOR, ceiling: int = CEILING) -> None:
        self.total, self.floor, self.ceiling = total, floor, ceiling
        self.in_flight = 0

    @contextmanager
    def transfer(self) -> Iterator[None]:
        """Hold a share for one body's whole transfer."""
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    def size(self) -> int:
        """The buffer size for one transfer now: a power of two in [floor, ceiling]."""
        share = self.total // max(self.in_flight, 1)
        if share >= self.ceiling:
            return self.ceiling
        if share <= self.floor:
            return self.floor
        return 1 << (share.bit_length() - 1)

    def fit(self, transport: asyncio.BaseTransport | None) -> int:
        """Size the backend connection's socket reads to the share; returns the share.

        asyncio's selector transport reads up to ``max_size`` (256 KiB) per
        ``recv`` whatever the reader's limit, so without this a small
        ``read_bufsize`` still lets 256 KiB per connection pile up. Other
        transports (uvloop) have no such attribute and are left alone.
        """
        size = self.size()
        if transport is not None and hasattr(transport, "max_size"):
            transport.max_size = size  # type: ignore[attr-defined]  # instance attribute shadows the class's
        return size



def bound_tls_reads(size: int = TLS_READ) -> None:
    """Make every TLS connection this process accepts read ciphertext ``size`` bytes at a time.

    asyncio's ``SSLProtocol`` allocates and zeroes (so: resident at once)
    a ``max_size`` bytearray per connection when it is accepted, 256 KiB by
    default: 50 MiB for 200 pulling clients that each send a few hundred
    bytes. 64 KiB still reads a 120 MB/s TLS push in 2,000 ``recv`` calls a
    second. It has to be the class's attribute because the loop builds the
    protocol inside ``connect_accepted_socket`` with no hook; it is set once
    at start-up, before the first accept, to the same value every time
    (idempotent), and a loop without ``asyncio.sslproto`` (uvloop) ignores it.
    """
    sslproto.SSLProtocol.max_size = size
