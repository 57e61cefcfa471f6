"""The backend as the request path sees it: its two clients, its slots, and how its failures are told.

Backend requests hold one of ``limits.max_connections`` slots: the pool is
sized to the client limit, so it cannot run out first, and if a slot is
still not free within :data:`POOL_WAIT` the answer is a 503 naming the
proxy, never a 502/504 blaming a backend that was never asked. Before an
answer starts, a backend that cannot be reached (refused, or no connection
within ``timeouts.connect``) is a 502 and one that does not answer within
``timeouts.read`` a 504.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from auth.errors import ProxyError
from proxy.http.backend import BackendClient
from proxy.http.backend_health import BackendHealth
from proxy.http.budget import Budget

__all__ = ["POOL_WAIT", "SKIP_AUTO", "ClientGone", "Upstream", "silent", "unreachable"]

log = logging.getLogger("proxy.http.forward")  # the name operators grep for since issue 11

# Headers aiohttp's client would add on its own; the backend must see only the client's. Set once on the
# session (``proxy.http.runtime.new_session``): per request, aiohttp rebuilds the set on every call.
SKIP_AUTO = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})
POOL_WAIT = 1.0  # seconds a request may wait for a backend slot; then 503, at once rather than after connect


class ClientGone(Exception):
    """The client went away mid-transfer: not the backend's fault, not a 502."""


@dataclass(frozen=True)
class Upstream:
    session: aiohttp.ClientSession  # uploads (requests with a body)
    origin: str  # e.g. http://127.0.0.1:5000
    body_timeout: float = 60.0  # an upload that sends nothing for this long is aborted
    send_timeout: float = 60.0  # a client that takes none of a response for this long is cut off
    pool: int = 1024  # backend requests at once (limits.max_connections)
    connect_timeout: float = 10.0  # timeouts.connect
    read_timeout: float = 300.0  # timeouts.read
    _slots: asyncio.Semaphore = field(init=False, repr=False, compare=False)
    health: BackendHealth = field(init=False, repr=False, compare=False)  # logs outages once
    budget: Budget = field(init=False, repr=False, compare=False)  # buffer sizes shared by bodies in flight
    wire: BackendClient = field(init=False, repr=False, compare=False)  # requests without a body

    def __post_init__(self) -> None:
        object.__setattr__(self, "_slots", asyncio.Semaphore(self.pool))
        object.__setattr__(self, "health", BackendHealth(self.origin))
        object.__setattr__(self, "budget", Budget())
        object.__setattr__(self, "wire", BackendClient(self.origin, connect_timeout=self.connect_timeout,
                                                       read_timeout=self.read_timeout))

    async def close(self) -> None:
        await self.wire.close()
        await self.session.close()

    @asynccontextmanager
    async def slot(self, request: web.Request, client: str) -> AsyncIterator[None]:
        """Hold one backend slot for a request and its whole response; 503 if none frees up in time."""
        if self._slots.locked():  # the timer only when there is something to wait for (issue 15: CPU)
            try:
                async with asyncio.timeout(POOL_WAIT):
                    await self._slots.acquire()
            except TimeoutError:
                log.warning("all %d backend slots busy for %gs: %s %s from %s answered 503 (proxy busy, not "
                            "the backend's fault)", self.pool, POOL_WAIT, request.method, request.path,
                            client or "-")
                raise ProxyError(503, "UNAVAILABLE", "this proxy is busy: all its connections to the registry "
                                 "are in use; try again shortly", {"Retry-After": "1"}) from None
        else:
            await self._slots.acquire()  # free: returns at once
        try:
            yield
        finally:
            self._slots.release()


def unreachable(upstream: Upstream, exc: BaseException, what: str) -> ProxyError:
    upstream.health.unreachable(exc, what)  # one WARNING per outage, with errno
    return ProxyError(502, "UNAVAILABLE", "the registry behind this proxy is unreachable; try again later")


def silent(upstream: Upstream, what: str) -> ProxyError:
    upstream.health.silent(upstream.read_timeout, what)  # logged once per outage, per request at DEBUG
    return ProxyError(504, "UNAVAILABLE", "the registry behind this proxy did not answer in time")
