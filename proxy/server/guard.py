"""The connection caps: ``limits.max_connections`` in all, ``limits.max_connections_per_ip`` per client.

Counted when the HTTP protocol sees a connection (after the PROXY header and
the TLS handshake, keyed by the real client), released when it closes. A
refused connection gets a 503 registry error, written by the same
``render_bytes`` as every other proxy-made answer, and is closed. Pure
bookkeeping: :class:`~proxy.server.aiohttp_seams.GuardedHandler` calls it.
"""

from __future__ import annotations

import logging
import time

from auth.access import Network, client_address
from auth.clientaddr import in_networks
from auth.errors import ProxyError
from proxy.config import Limits
from proxy.http.errors import render_bytes

__all__ = ["BUSY", "BUSY_PER_IP", "ConnectionGuard"]

log = logging.getLogger(__name__)

REFUSAL_LOG_INTERVAL = 10.0

BUSY = render_bytes(ProxyError(503, "UNAVAILABLE", "too many connections to this proxy; try again shortly",
                               {"Retry-After": "1"}))
BUSY_PER_IP = render_bytes(ProxyError(503, "UNAVAILABLE", "too many connections from your address to this proxy; "
                                      "close some or try again shortly", {"Retry-After": "5"}))


class ConnectionGuard:
    """One listener's connections: in all against ``max_connections``, per address against
    ``max_connections_per_ip``, and a rate-limited log line for each kind of refusal.

    ``per_ip`` holds only addresses with an open connection (an entry goes
    when its count reaches zero), so it never has more than
    ``max_connections`` entries, whoever connects.
    """

    def __init__(self, limits: Limits, exempt: tuple[Network, ...] = ()) -> None:
        self.limits = limits
        self.exempt = exempt  # trusted L7 fronts: many clients behind one address
        self.open = 0
        self.refused = 0
        self.refused_per_ip = 0
        self.per_ip: dict[str, int] = {}
        self._last_log = {"all": float("-inf"), "ip": float("-inf")}

    @staticmethod
    def key(address: str) -> str:
        """One key per client: ``::ffff:192.0.2.1`` and ``192.0.2.1`` are the same client."""
        ip = client_address(address)
        return str(ip) if ip is not None else address

    def admit(self, address: str) -> bytes | None:
        """None when admitted (counted until :meth:`release`), else the 503 to write before closing."""
        if self.open >= self.limits.max_connections:
            self.refused += 1
            self._log("all", "max_connections (%d) reached: refusing new connections (%d refused so far)",
                      self.limits.max_connections, self.refused)
            return BUSY
        key = self.key(address)
        held = self.per_ip.get(key, 0)
        if held >= self.limits.max_connections_per_ip and not in_networks(key, self.exempt):
            self.refused_per_ip += 1
            self._log("ip", "max_connections_per_ip (%d) reached by %s: refusing its new connections "
                      "(%d refused so far, all addresses)", self.limits.max_connections_per_ip, key,
                      self.refused_per_ip)
            return BUSY_PER_IP
        self.open += 1
        self.per_ip[key] = held + 1
        return None

    def release(self, address: str) -> None:
        self.open -= 1
        key = self.key(address)
        left = self.per_ip.get(key, 0) - 1
        if left > 0:
            self.per_ip[key] = left
        else:
            self.per_ip.pop(key, None)

    def _log(self, kind: str, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last_log[kind] >= REFUSAL_LOG_INTERVAL:
            self._last_log[kind] = now
            log.warning(message, *args)
