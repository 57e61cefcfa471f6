"""The maintenance switch: while a file exists, writes get 503 and reads go on.

A file rather than an API call so that one ``touch`` on shared storage
reaches every replica, survives restarts, and needs no admin port. The file
is stat()ed at most every ``interval`` seconds (0.5 by default), so a switch
is noticed within a second and a request costs a clock read.
"""

from __future__ import annotations

import time
from pathlib import Path

from aiohttp import web

from proxy.errors import json_error

RETRY_AFTER = 60
INTERVAL = 0.5


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
        """The file's first line, if the operator wrote one (e.g. by ``maintenance on --reason``)."""
        try:
            return self.path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[0][:200]
        except (OSError, IndexError):
            return ""


def maintenance_response(flag: MaintenanceFlag) -> web.Response:
    reason = flag.reason()
    message = ("the registry is read-only for maintenance (e.g. garbage collection); pulls work, "
               f"pushes and deletes are refused: retry in a few minutes{': ' + reason if reason else ''}")
    return json_error(503, "UNAVAILABLE", message, headers={"Retry-After": str(RETRY_AFTER)})
