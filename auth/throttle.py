"""Failed-login throttling: per client IP and per user name, in a fixed window.

Why both keys: per IP alone lets a botnet try one password per address
against ``mark`` forever; per user alone lets one address sweep every user
name. Each key counts failures in a window that starts at its first
failure; after ``limit`` failures the key is refused (429 with
``Retry-After``) until that window ends. Only failures are counted and
nothing resets a counter early, so a correct password from one address does
not clear another address's record.

The check runs before bcrypt: a refused attempt costs no hash, so a flood
of guesses cannot also become a CPU exhaustion attack.

Memory is bounded: at most ``max_keys`` keys are tracked; the least
recently failed ones are forgotten first (an attacker cycling through many
addresses can push old entries out, but never grow memory). Counters live
in one process: every replica throttles on its own (see SECURITY.md).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 100_000


@dataclass(frozen=True)
class Blocked:
    """Why a login attempt was refused without checking the password."""

    key: str  # "ip" or "user": which counter is over the limit
    retry_after: int  # whole seconds until that window ends (>= 1)

    @property
    def key_text(self) -> str:
        return "address" if self.key == "ip" else "user name"


class LoginThrottle:
    """Thread-safe counters of failed logins; ``clock`` is injectable for tests."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        max_keys: int = MAX_KEYS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if limit < 1 or window <= 0 or max_keys < 2:
            raise ValueError("limit >= 1, window > 0 and max_keys >= 2 are required")
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._lock = threading.Lock()
        # key -> (window start, failures in that window); ordered by last failure
        self._counts: OrderedDict[tuple[str, str], tuple[float, int]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._counts)

    @staticmethod
    def _keys(ip: str, user: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("ip", ip), ("user", user)

    def blocked(self, ip: str, user: str) -> Blocked | None:
        """None if this attempt may be checked; else which key is over and for how long."""
        now = self._clock()
        worst: Blocked | None = None
        with self._lock:
            for key in self._keys(ip, user):
                entry = self._counts.get(key)
                if entry is None:
                    continue
                start, failures = entry
                if now - start >= self.window:
                    del self._counts[key]  # the window passed: forget it
                    continue
                if failures >= self.limit:
                    wait = max(1, math.ceil(start + self.window - now))
                    if worst is None or wait > worst.retry_after:
                        worst = Blocked(key[0], wait)
        return worst

    def failure(self, ip: str, user: str) -> None:
        """Count one failed login for both the address and the user name."""
        now = self._clock()
        with self._lock:
            for key in self._keys(ip, user):
                start, failures = self._counts.pop(key, (now, 0))
                if now - start >= self.window:
                    start, failures = now, 0
                self._counts[key] = (start, failures + 1)  # re-inserted last: most recent
            while len(self._counts) > self.max_keys:
                self._counts.popitem(last=False)
