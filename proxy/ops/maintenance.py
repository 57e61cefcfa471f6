"""The maintenance switch: while a file exists, writes are refused and reads go on.

A file rather than an API call so that one ``touch`` on shared storage
reaches every replica, survives restarts, and needs no admin port. The
server stats it at most every ``interval`` seconds (0.5 by default), so a
switch is noticed within a second and a request costs a clock read. The CLI
writes it (``maintenance on``, ``gc``) with the same functions.
"""

from __future__ import annotations

import getpass
import os
import time
from pathlib import Path

from auth.errors import ProxyError

__all__ = ["INTERVAL", "RETRY_AFTER", "MaintenanceFlag", "read_reason", "switch_off", "switch_on"]

RETRY_AFTER = 60
INTERVAL = 0.5


def switch_on(path: Path, reason: str, until: str = "") -> None:
    """Create the flag atomically (write a temp file, rename) so no reader sees half a line."""
    end = f"; writes expected back {until}" if until else ""
    line = (f"{reason or 'maintenance'}{end} (since {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, "
            f"by {getpass.getuser()})\n")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(line, encoding="utf-8")
    tmp.replace(path)


def switch_off(path: Path) -> None:
    path.unlink(missing_ok=True)


def read_reason(path: Path) -> str:
    """The file's first line, if the operator wrote one (e.g. by ``maintenance on --reason``)."""
    try:
        return path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[0][:200]
    except (OSError, IndexError):
        return ""


class MaintenanceFlag:
    """Cached ``path.exists()``; per process, cheap to ask on every write."""

    def __init__(self, path: Path, interval: float = INTERVAL) -> None:
        self.path = path
        self.interval = interval
        self._checked = float("-inf")
        self._on = False

    def active(self) -> bool:
        now = time.monotonic()
        if now - self._checked >= self.interval:
            self._checked = now
            self._on = self.path.exists()
        return self._on

    def reason(self) -> str:
        return read_reason(self.path)

    def refusal(self) -> ProxyError:
        """What a push or delete gets while the flag is on (checked before auth: cheaper, says why at once).

        423 with the registry error code DENIED, not 503: measured with the real
        clients, docker retries a 503 for about 50 s and then prints only
        "received unexpected HTTP status: 503", and podman prints the same at
        once; a 4xx with a JSON error makes both stop at once and print the
        message (``denied: the registry is read-only ...``). 423 (Locked) rather
        than 403 keeps maintenance apart from authorization in logs and metrics.
        """
        reason = self.reason()
        message = ("the registry is read-only for maintenance; pulls work, pushes and deletes are refused"
                   f"{': ' + reason if reason else ''}")
        return ProxyError(423, "DENIED", message, {"Retry-After": str(RETRY_AFTER)})
