"""One login throttle for all workers: the supervisor owns it, workers reserve and resolve over their channel.

A throttle per worker would give a guesser ``workers`` times
``throttle.failures`` attempts, since the kernel spreads its connections
over the workers. So the supervisor keeps the one
:class:`~auth.throttle.LoginThrottle` (unchanged: the same tables, limits
and reload carry-over as a single process) and a worker's
:class:`SharedThrottle` stands in for it in the gate (``proxy.http.gate``):

* ``reserve`` sends ``{"op": "reserve", "id", "address", "user"}`` and waits
  for the answer: a slot (``delay``), ``blocked`` (kind, ``retry_after``),
  ``off`` (throttling is disabled now) or ``error``. The supervisor reserves
  synchronously, in the order the requests arrive from every worker, so the
  race that the in-flight count closes in one process stays closed across
  all of them: at most ``failures`` checks per pair are ever in flight or
  failed.
* ``failed`` / ``succeeded`` are one line each, unanswered.

Only password checks pay this round trip (tokens are verified locally).
The worker fails *closed*: when the supervisor does not answer within
:data:`RESERVE_TIMEOUT`, or is gone, the check is refused with a 503 and
no password is checked, never let through unthrottled. A reservation the
worker gave up on (timeout, client gone) is resolved as a failure, and a
worker that dies has all of its unresolved reservations counted as
failures (:meth:`Reservations.abandon`): the passwords may have been checked.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from auth.errors import ProxyError
from auth.throttle import ADDRESS, PAIR, Blocked, LoginThrottle, Slot
from proxy.config import Config

__all__ = ["MAX_RESERVED", "RESERVE_TIMEOUT", "RemoteSlot", "Reservations", "SharedThrottle", "new_throttle",
           "unavailable"]

log = logging.getLogger(__name__)

RESERVE_TIMEOUT = 5.0
MAX_RESERVED = 65536  # per worker; its connections (limits.max_connections) bound it far below this


def unavailable() -> ProxyError:
    """The 503 for a password check the shared throttle cannot reserve (a new one each time: it is raised)."""
    return ProxyError(503, "UNAVAILABLE", "password checks are unavailable for a moment; try again shortly",
                      {"Retry-After": "1"})


def new_throttle(config: Config) -> LoginThrottle | None:
    """The supervisor's throttle for ``config`` (as ``proxy.http.build_runtime`` makes a single process's)."""
    t = config.throttle
    if not t.enabled:
        return None
    return LoginThrottle(t.failures, t.window, failures_per_ip=t.failures_per_ip, slow_after=t.slow_after,
                         max_delay=t.max_delay)


class Reservations:
    """The supervisor's side for one worker: its reservations not yet resolved, and the answers."""

    def __init__(self) -> None:
        # id -> (the throttle that reserved it, the slot): a reload may replace the throttle meanwhile
        self._slots: dict[int, tuple[LoginThrottle, Slot]] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def answer(self, throttle: LoginThrottle | None, message: dict[str, Any]) -> dict[str, Any] | None:
        """The reply to one message from the worker (None: it needs none); ValueError if malformed."""
        op, key = message.get("op"), message.get("id")
        if not isinstance(key, int) or isinstance(key, bool):
            raise ValueError(f"{op}: no id")
        if op in ("failed", "succeeded"):
            entry = self._slots.pop(key, None)  # unknown: blocked, off, or never arrived; nothing held
            if entry is not None:
                held, slot = entry
                (held.failed if op == "failed" else held.succeeded)(slot)
            return None
        if op != "reserve":
            raise ValueError(f"unknown op {op!r}")
        address, user = message.get("address"), message.get("user")
        if not isinstance(address, str) or not isinstance(user, str):
            raise ValueError("reserve: address and user must be strings")
        if throttle is None:
            return {"id": key, "off": True}
        if key in self._slots or len(self._slots) >= MAX_RESERVED:
            return {"id": key, "error": "too many checks in flight"}
        counted = message.get("count", True) is not False
        result = throttle.reserve(address, user, count=counted)
        if isinstance(result, Blocked):
            return {"id": key, "blocked": result.kind, "retry_after": result.retry_after}
        if not counted:
            return {"id": key, "off": True}  # nothing held: nothing to resolve
        self._slots[key] = (throttle, result)
        return {"id": key, "delay": result.delay}

    def abandon(self) -> int:
        """The worker is gone: every check it had reserved counts as failed (it may have run). How many."""
        entries, self._slots = list(self._slots.values()), {}
        for held, slot in entries:
            held.failed(slot)
        return len(entries)


@dataclass
class RemoteSlot:
    """A reservation held by the supervisor; ``delay`` as :class:`auth.throttle.Slot`'s."""

    id: int
    delay: float
    held: bool = True  # False when throttling was off: nothing to resolve
    done: bool = False


class SharedThrottle:
    """The supervisor's throttle as the gate sees it: ``await reserve(...)``, then ``failed`` or ``succeeded``."""

    def __init__(self, send: Callable[[dict[str, Any]], bool], timeout: float = RESERVE_TIMEOUT) -> None:
        self._send = send  # False when the channel is gone
        self._timeout = timeout
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.closed = False

    async def reserve(self, address: str, user: str, count: bool = True) -> RemoteSlot | Blocked:
        """Raises :func:`unavailable` (503) when the supervisor cannot answer: no password is checked then."""
        if self.closed:
            raise unavailable()
        key = next(self._ids)
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[key] = answer
        try:
            request: dict[str, Any] = {"op": "reserve", "id": key, "address": address, "user": user}
            if not count:
                request["count"] = False  # not a new guess: checked against the limits, held nowhere
            if not self._send(request):
                raise unavailable()
            async with asyncio.timeout(self._timeout):
                reply = await answer
        except TimeoutError:
            self._send({"op": "failed", "id": key})  # if it was reserved after all, it is not left in flight
            log.error("the supervisor did not answer a login throttle reservation within %gs; refused (503)",
                      self._timeout)
            raise unavailable() from None
        except BaseException:  # cancelled (client gone) or closed: resolve whatever the supervisor holds
            self._send({"op": "failed", "id": key})
            raise
        finally:
            self._waiting.pop(key, None)
        if "delay" in reply:
            return RemoteSlot(key, float(reply["delay"]))
        if reply.get("off"):
            return RemoteSlot(key, 0.0, held=False)
        kind = reply.get("blocked")
        if kind in (PAIR, ADDRESS):
            return Blocked(kind, max(1, int(reply.get("retry_after", 1))))
        log.error("login throttle reservation refused by the supervisor: %s", reply.get("error", reply))
        raise unavailable()

    def failed(self, slot: RemoteSlot) -> None:
        self._resolve(slot, "failed")

    def succeeded(self, slot: RemoteSlot) -> None:
        self._resolve(slot, "succeeded")

    def _resolve(self, slot: RemoteSlot, op: str) -> None:
        if slot.done:
            return
        slot.done = True
        if slot.held:
            self._send({"op": op, "id": slot.id})  # lost with the channel: the supervisor resolves it as failed

    def answered(self, message: dict[str, Any]) -> None:
        """A reply from the supervisor (its ``id`` names the reservation)."""
        waiting = self._waiting.get(message.get("id"))  # type: ignore[arg-type]
        if waiting is not None and not waiting.done():
            waiting.set_result(message)

    def close(self) -> None:
        """The supervisor is gone: waiting and later reservations are refused (503)."""
        self.closed = True
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(unavailable())
