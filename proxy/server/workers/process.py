"""One worker slot as the supervisor sees it: the process in it now, its channel, its reservations.

The slot outlives its processes: when one dies the supervisor starts the
next in the same slot (same index, same private admin socket), so logs,
metrics and the admin listener keep naming workers 0 .. N-1.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

from proxy.server.workers.channel import encode
from proxy.server.workers.throttle import Reservations

__all__ = ["WorkerProcess", "describe_exit"]

log = logging.getLogger(__name__)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "is running"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


class WorkerProcess:
    """A slot and its current process; every method is called on the supervisor's event loop."""

    def __init__(self, index: int, admin_socket: str) -> None:
        self.index = index
        self.admin_socket = admin_socket
        self.proc: asyncio.subprocess.Process | None = None
        self.ready = False
        self.restarts = 0
        self.started_at = 0.0
        self.reservations = Reservations()
        self._writer: asyncio.StreamWriter | None = None
        self._listening: asyncio.Task[None] | None = None
        self._outcome: asyncio.Future[str | None] | None = None

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    # -- the supervisor's events ----------------------------------------------------
    def begin(self, proc: asyncio.subprocess.Process, writer: asyncio.StreamWriter,
              listening: asyncio.Task[None]) -> None:
        self.proc, self._writer, self._listening = proc, writer, listening
        self.ready = False
        self.started_at = time.monotonic()
        self._outcome = asyncio.get_running_loop().create_future()

    def serving(self) -> None:
        self.ready = True
        self._settle(None)

    def failed(self, why: str) -> None:
        self._settle(why)

    def end(self) -> None:
        """Its channel closed (it exited): what it had reserved counts as failed logins."""
        self.ready = False
        abandoned = self.reservations.abandon()
        if abandoned:
            log.warning("worker %d: %d password checks were in flight when it went; counted as failures",
                        self.index, abandoned)
        if self._writer is not None:
            self._writer.close()

    def _settle(self, why: str | None) -> None:
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(why)

    # -- asking and telling -----------------------------------------------------------
    def send(self, message: dict[str, Any]) -> bool:
        writer = self._writer
        if writer is None or writer.is_closing() or not self.alive:
            return False
        writer.write(encode(message))
        return True

    def backlog(self) -> int:
        """Bytes written to it and not yet taken by the kernel: grows while it reads nothing (stopped, hung)."""
        writer = self._writer
        return 0 if writer is None or writer.transport.is_closing() else writer.transport.get_write_buffer_size()

    def signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    async def wait(self) -> int:
        """Its exit status, once its last messages have been handled (and its reservations resolved)."""
        assert self.proc is not None
        code = await self.proc.wait()
        if self._listening is not None:
            await asyncio.gather(self._listening, return_exceptions=True)
        return code

    async def first_word(self) -> str | None:
        """None once it serves; else why it cannot (its own words, or how it ended)."""
        assert self.proc is not None and self._outcome is not None
        exited = asyncio.ensure_future(self.proc.wait())
        try:
            await asyncio.wait((self._outcome, exited), return_when=asyncio.FIRST_COMPLETED)
        finally:
            exited.cancel()
        if not self._outcome.done():  # it died: its last words may still be in the channel
            code = await self.wait()
            self._settle(f"worker {self.index} {describe_exit(code)} while starting (its log lines say why)")
        return self._outcome.result()
