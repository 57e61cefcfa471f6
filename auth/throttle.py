"""Failed-login throttling that cannot be raced and cannot lock anybody out.

Three counters, each in a fixed window that starts at its first use:

* per (client address, user name): a hard limit of ``failures``. This is
  what stops a password guesser, and it is the only counter a correct
  password can clear (its own pair's failures).
* per client address, whatever user names it tries: a hard limit of
  ``failures_per_ip``, far above ``failures`` so that a NAT or a load
  balancer in front of many honest users does not trip it, yet low enough
  that spraying user names from one address stops quickly.
* per user name, from every address: never a refusal, only a delay before
  the check (zero up to ``slow_after`` failures, then growing to
  ``max_delay``). A refusal here would let anyone lock ``mark`` out with ten
  wrong passwords from anywhere; a bounded delay costs ``mark`` at most
  ``max_delay`` seconds and a distributed guesser much more.

So a correct password from an address with no recent failures of its own
is never refused: the old per-address and per-user lockouts let one stale
CI job behind a NAT block every pusher, and anyone lock out any user.

The race: a counter read before bcrypt and written after it lets forty
concurrent guesses all pass the check. :meth:`LoginThrottle.reserve`
therefore counts a check *in flight* against both hard limits at once (it
is synchronous: no await between the test and the increment), and the
:class:`Slot` it returns must be resolved: :meth:`~LoginThrottle.succeeded`
frees it, :meth:`~LoginThrottle.failed` turns it into a failure. At most
``failures`` checks per pair are ever in flight or failed in one window.

Memory is bounded: each table keeps at most ``max_keys`` keys, the least
recently used forgotten first, and expired keys are dropped as they are met.
Spraying user names from one address hits ``failures_per_ip`` long before
that; a botnet can push old keys out, never grow memory. Counters live in
one process: every replica throttles on its own (see SECURITY.md).
"""

from __future__ import annotations

import ipaddress
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

__all__ = ["MAX_KEYS", "Blocked", "Entry", "LoginThrottle", "Slot", "normalize_address"]

MAX_KEYS = 50_000  # per table: ~15 MB each when full (measured ~290 bytes a key)
PAIR, ADDRESS, USER = "address+user", "address", "user"


@dataclass(frozen=True)
class Blocked:
    """Why a login attempt was refused without checking the password."""

    kind: str  # PAIR or ADDRESS: which hard limit is reached
    retry_after: int  # whole seconds until that window ends (>= 1)

    @property
    def key_text(self) -> str:
        if self.kind == PAIR:
            return "from this address for this user name (the address+user limit)"
        return "from this address, whatever the user name (the address limit)"


@dataclass(frozen=True)
class Entry:
    """One tracked key as operators see it (``GET /throttle``, ``throttle list``)."""

    kind: str  # PAIR, ADDRESS or USER
    address: str | None
    user: str | None
    failures: int
    in_flight: int
    limit: int | None  # None for USER: it only delays
    seconds_until_free: int  # 0 when not refused (PAIR, ADDRESS) or not delayed (USER)
    delay: float  # seconds added before each check (USER only)


class _Count:
    __slots__ = ("failures", "in_flight", "start")

    def __init__(self, start: float) -> None:
        self.start = start
        self.failures = 0
        self.in_flight = 0


_Table: TypeAlias = "OrderedDict[Any, _Count]"  # key -> count, ordered by last use (oldest first)


class Slot:
    """A reserved check; resolve it exactly once (a second resolution is ignored)."""

    __slots__ = ("_counts", "address", "delay", "done", "user")

    def __init__(self, address: str, user: str, delay: float, counts: tuple[_Count, ...]) -> None:
        self.address = address
        self.user = user
        self.delay = delay  # seconds to sleep before the check: this user's failures from everywhere
        self.done = False
        self._counts = counts  # (pair, address): the objects whose in_flight this slot holds


def normalize_address(address: str) -> str:
    """The canonical text of an IP address (``::FFFF:1.2.3.4`` and friends); anything else as given."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address


class LoginThrottle:
    """The three tables; ``clock`` is injectable for tests. Safe to call from several threads."""

    def __init__(
        self,
        failures: int,
        window: float,
        *,
        failures_per_ip: int = 100,
        slow_after: int = 20,
        max_delay: float = 2.0,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures < 1 or failures_per_ip < 1 or window <= 0 or slow_after < 1 or max_delay < 0 or max_keys < 2:
            raise ValueError("failures, failures_per_ip, slow_after >= 1, window > 0, max_delay >= 0 and "
                             "max_keys >= 2 are required")
        self.failures = failures
        self.failures_per_ip = failures_per_ip
        self.window = window
        self.slow_after = slow_after
        self.max_delay = max_delay
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        # ordered by last use, oldest first: what eviction drops
        self._pairs: OrderedDict[tuple[str, str], _Count] = OrderedDict()
        self._addresses: OrderedDict[str, _Count] = OrderedDict()
        self._users: OrderedDict[str, _Count] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pairs) + len(self._addresses) + len(self._users)

    # -- the request path ------------------------------------------------------------
    def reserve(self, address: str, user: str, count: bool = True) -> Slot | Blocked:
        """A slot for one password check, or why not; no await may come between call and use.

        ``count=False`` is for what is not a new guess (credentials verified
        within ``auth.cache_ttl``, or joining an identical check already
        running): a blocked pair or address is still refused, but nothing is
        counted in flight, so a CI job's parallel requests with a correct
        password never reach the limit.
        """
        now = self._clock()
        with self._lock:
            pair = self._current(self._pairs, (address, user), now)
            addr = self._current(self._addresses, address, now)
            blocks = [Blocked(kind, self._wait(c, now))
                      for kind, c, limit in ((PAIR, pair, self.failures), (ADDRESS, addr, self.failures_per_ip))
                      if c is not None and c.failures + c.in_flight >= limit]
            if blocks:
                return max(blocks, key=lambda b: b.retry_after)
            if not count:
                return Slot(address, user, 0.0, ())
            pair = self._touch(self._pairs, (address, user), pair, now)
            addr = self._touch(self._addresses, address, addr, now)
            pair.in_flight += 1
            addr.in_flight += 1
            by_user = self._current(self._users, user, now)
            return Slot(address, user, self._delay(by_user.failures if by_user else 0), (pair, addr))

    def succeeded(self, slot: Slot) -> None:
        """The password was right: free the slot and forget this pair's failures (only this pair's)."""
        with self._lock:
            if self._resolve(slot):
                pair = self._pairs.get((slot.address, slot.user))
                if pair is not None:
                    pair.failures = 0
                    self._drop_if_idle(self._pairs, (slot.address, slot.user), pair)
                addr = self._addresses.get(slot.address)
                if addr is not None:
                    self._drop_if_idle(self._addresses, slot.address, addr)

    def failed(self, slot: Slot) -> None:
        """The password was wrong (or the check was abandoned: it may have run): count a failure."""
        now = self._clock()
        with self._lock:
            if self._resolve(slot):
                for table, key in ((self._pairs, (slot.address, slot.user)), (self._addresses, slot.address),
                                   (self._users, slot.user)):
                    self._touch(table, key, self._current(table, key, now), now).failures += 1

    # -- operators -------------------------------------------------------------------
    def entries(self, address: str | None = None, user: str | None = None) -> list[Entry]:
        """Every live key matching the filters (see :meth:`clear`), refused ones first."""
        now = self._clock()
        want = None if address is None else normalize_address(address)
        out = []
        with self._lock:
            for kind, table in ((PAIR, self._pairs), (ADDRESS, self._addresses), (USER, self._users)):
                for key, count in list(table.items()):
                    if self._current(table, key, now) is None:
                        continue
                    a, u = _split(kind, key)
                    if _matches(a, u, want, user):
                        out.append(self._entry(kind, a, u, count, now))
        out.sort(key=lambda e: (-e.seconds_until_free, e.kind, e.address or "", e.user or ""))
        return out

    def clear(self, address: str | None = None, user: str | None = None, *, everything: bool = False) -> int:
        """Forget matching keys; how many. A filter matches only keys that have that field.

        ``address`` alone: that address's own key and all its pairs;
        ``user`` alone: that user's delay key and all its pairs; both: that
        one pair. Checks in flight still resolve (as failures, if wrong).
        """
        if not everything and address is None and user is None:
            raise ValueError("name an address, a user, or everything")
        want = None if address is None else normalize_address(address)
        removed = 0
        with self._lock:
            for kind, table in ((PAIR, self._pairs), (ADDRESS, self._addresses), (USER, self._users)):
                for key in list(table):
                    if everything or _matches(*_split(kind, key), want, user):
                        del table[key]
                        removed += 1
        return removed

    # -- internals (the lock is held) --------------------------------------------------
    def _current(self, table: _Table, key: Any, now: float) -> _Count | None:
        """The key's count in its present window: a passed window forgets failures (never in-flight checks)."""
        count = table.get(key)
        if count is not None and now - count.start >= self.window:
            count.failures = 0
            count.start = now
            if count.in_flight == 0:
                del table[key]
                return None
        return count

    def _touch(self, table: _Table, key: Any, count: _Count | None, now: float) -> _Count:
        """Mark the key most recently used (creating it), then evict expired and, past the cap, oldest keys."""
        if count is None:
            count = table[key] = _Count(now)
        table.move_to_end(key)
        while table:
            oldest_key, oldest = next(iter(table.items()))
            if len(table) > self.max_keys or (now - oldest.start >= self.window and oldest.in_flight == 0):
                del table[oldest_key]
            else:
                break
        return count

    @staticmethod
    def _drop_if_idle(table: _Table, key: Any, count: _Count) -> None:
        if count.failures == 0 and count.in_flight == 0:
            del table[key]

    @staticmethod
    def _resolve(slot: Slot) -> bool:
        if slot.done:
            return False
        slot.done = True
        for count in slot._counts:  # the reserved objects, even if cleared or evicted since
            count.in_flight = max(0, count.in_flight - 1)
        return True

    def _wait(self, count: _Count, now: float) -> int:
        return max(1, math.ceil(count.start + self.window - now))

    def _delay(self, user_failures: int) -> float:
        """Zero up to ``slow_after`` failures, then linear up to ``max_delay`` at twice that."""
        if user_failures <= self.slow_after:
            return 0.0
        return min(self.max_delay, self.max_delay * (user_failures - self.slow_after) / self.slow_after)

    def _entry(self, kind: str, address: str | None, user: str | None, count: _Count, now: float) -> Entry:
        if kind == USER:
            delay = self._delay(count.failures)
            return Entry(kind, address, user, count.failures, count.in_flight, None,
                         self._wait(count, now) if delay else 0, delay)
        limit = self.failures if kind == PAIR else self.failures_per_ip
        refused = count.failures + count.in_flight >= limit
        return Entry(kind, address, user, count.failures, count.in_flight, limit,
                     self._wait(count, now) if refused else 0, 0.0)


def _split(kind: str, key: Any) -> tuple[str | None, str | None]:
    """(address, user) of a table key; the field a table does not key on is None."""
    if kind == PAIR:
        return key[0], key[1]
    return (key, None) if kind == ADDRESS else (None, key)


def _matches(address: str | None, user: str | None, want_address: str | None, want_user: str | None) -> bool:
    """``want_address`` is already normalized; a key lacking a wanted field never matches."""
    if want_address is not None and (address is None or normalize_address(address) != want_address):
        return False
    return want_user is None or user == want_user
