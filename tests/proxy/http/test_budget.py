"""The shared buffer budget: one transfer gets the full size, many share a bound total."""

from __future__ import annotations

import asyncio
import ssl
from asyncio import sslproto
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from proxy.http.budget import BUDGET, CEILING, FLOOR, TLS_READ, Budget, bound_tls_reads


def test_one_transfer_keeps_the_full_chunk():
    budget = Budget()
    with budget.transfer():
        assert budget.size() == CEILING
    assert budget.size() == CEILING  # nothing in flight: the next one starts at full size too


@pytest.mark.parametrize("n", [2, 33, 100, 200, 1000])
def test_many_transfers_share_the_budget_within_floor_and_ceiling(n):
    budget = Budget()
    with _many(budget, n):
        size = budget.size()
        assert FLOOR <= size <= CEILING
        assert size & (size - 1) == 0  # a power of two: the allocator reuses the blocks
        assert size * n <= max(BUDGET, FLOOR * n)  # the total stays bounded unless the floor rules


def test_share_grows_back_when_transfers_end():
    budget = Budget(total=1024 * 1024, floor=4096, ceiling=256 * 1024)
    with _many(budget, 64):
        assert budget.size() == 16 * 1024
    assert budget.in_flight == 0
    assert budget.size() == 256 * 1024


def test_transfer_is_released_on_error():
    budget = Budget()
    with pytest.raises(RuntimeError), budget.transfer():
        raise RuntimeError
    assert budget.in_flight == 0


def test_fit_sets_the_backend_transports_read_size():
    class Transport(asyncio.Transport):
        max_size = 256 * 1024

    budget = Budget(total=64 * 1024, floor=1024, ceiling=256 * 1024)
    transport = Transport()
    with _many(budget, 4):
        assert budget.fit(transport) == 16 * 1024
        assert transport.max_size == 16 * 1024
    assert budget.fit(None) == 64 * 1024  # alone: the whole (small) budget; no transport, no error


def test_bound_tls_reads_shrinks_the_per_connection_buffer():
    before = sslproto.SSLProtocol.max_size
    try:
        bound_tls_reads()
        loop = asyncio.new_event_loop()
        try:
            proto = sslproto.SSLProtocol(loop, asyncio.Protocol(), ssl.create_default_context(), None)
            assert len(proto._ssl_buffer) == TLS_READ < 256 * 1024
        finally:
            loop.close()
    finally:
        sslproto.SSLProtocol.max_size = before


@contextmanager
def _many(budget: Budget, n: int) -> Iterator[None]:
    """Hold ``n`` transfers at once."""
    with ExitStack() as stack:
        for _ in range(n):
            stack.enter_context(budget.transfer())
        yield
