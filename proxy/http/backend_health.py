"""Is the backend answering? Logged once per change, never once per request.

During an outage every request fails the same way; a warning per request
buries the one fact an operator needs (since when, and why) under
thousands of identical lines, and an exception class name
(``ClientConnectorError``) does not say why. So the forwarder reports each
outcome to the :class:`BackendHealth` its :class:`~proxy.http.forward.Upstream`
owns, which logs one WARNING when the backend stops answering, with the
address and the errno (``[Errno 111] Connection refused``), and one INFO
when it answers again, with how long it was gone and how many requests got
a 502/504 meanwhile. Each failed request still gets a DEBUG line.

The state lives in the upstream, which a reload keeps (the backend is
restart-only), so a reload during an outage neither repeats nor loses it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import aiohttp

__all__ = ["BackendHealth", "describe"]

log = logging.getLogger(__name__)


def describe(exc: BaseException) -> str:
    """Why a connection failed, as the OS said it: ``[Errno 111] Connection refused``.

    aiohttp's own text (``Cannot connect to host ... [Connect call failed
    (...)]``) hides the errno's meaning; the errno is on the exception or its
    cause. Failures without one (a connect timeout, a dropped connection) are
    described in words.
    """
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return "no connection within timeouts.connect"
    seen: BaseException | None = exc
    for _ in range(8):  # a bounded walk down the cause chain
        if seen is None:
            break
        errno = getattr(seen, "errno", None)
        if isinstance(seen, OSError) and isinstance(errno, int) and errno != 0:
            text = os.strerror(errno) if errno > 0 else (seen.strerror or "")  # < 0: a resolver (gai) error
            return f"[Errno {errno}] {text}"
        seen = seen.__cause__ or seen.__context__
    return str(exc) or type(exc).__name__


class BackendHealth:
    """Up or down, since when, and how many requests failed while down."""

    def __init__(self, origin: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.origin = origin
        self._clock = clock
        self._down_since: float | None = None
        self.failed_requests = 0  # during the current outage

    @property
    def up(self) -> bool:
        return self._down_since is None

    def unreachable(self, exc: BaseException, what: str) -> None:
        """No connection (refused, timed out, reset, name unknown): the request gets a 502."""
        self._fail("unreachable", describe(exc), what)

    def silent(self, read_timeout: float | None, what: str) -> None:
        """Connected, but no answer within ``timeouts.read``: the request gets a 504."""
        after = f"{read_timeout:g}s" if read_timeout else "the read timeout"
        self._fail("not answering", f"no response within {after} (timeouts.read)", what)

    def answered(self) -> None:
        """A response head arrived: the backend is up. Costs one comparison while it already was."""
        if self._down_since is None:
            return
        gone = self._clock() - self._down_since
        log.info("backend %s reachable again after %.1f s (%d requests failed meanwhile)",
                 self.origin, gone, self.failed_requests)
        self._down_since = None
        self.failed_requests = 0

    def _fail(self, state: str, reason: str, what: str) -> None:
        self.failed_requests += 1
        if self._down_since is None:
            self._down_since = self._clock()
            log.warning("backend %s %s: %s", self.origin, state, reason)
        log.debug("backend %s %s for %s: %s", self.origin, state, what, reason)
