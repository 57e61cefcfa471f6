"""A worker process: ``proxy.server.lifecycle.serve`` on sockets the supervisor bound, linked to it.

Started by the supervisor as ``python -m proxy.server.workers`` (a fresh
interpreter, not a fork of one running an event loop and threads), it reads
its :class:`~proxy.server.workers.channel.WorkerSpec` from stdin and runs
the very ``serve`` a single process runs, with a :class:`WorkerLink` as its
``WorkerRole``:

* the public sockets are inherited, already listening; every worker accepts
  on them and the kernel hands each connection to one. TLS (and the PROXY
  header, and the plain-HTTP-on-TLS answer) happen here, per accepted
  socket, exactly as in one process;
* the admin listener is private, a unix socket in the supervisor's 0700
  directory, which the supervisor scrapes and sums;
* the login throttle is the supervisor's (``proxy.server.workers.throttle``);
* a ``DELETE`` the registry accepted through this worker evicts that digest
  in every worker's cache, relayed by the supervisor (``...workers.evict``);
* a reload comes from the supervisor's ``reload`` message (its SIGHUP),
  and the end of the channel (the supervisor is gone, even by SIGKILL)
  stops the worker as SIGTERM would: it drains, and no orphan keeps serving.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import logging
import os
import pickle
import secrets
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from auth.digestcache import Key
from auth.keys import read_token_key
from proxy.config import Config
from proxy.http.keys import LIVE
from proxy.observability.admin import create_admin_app
from proxy.observability.metrics import Metrics
from proxy.server.lifecycle import serve
from proxy.server.workers.channel import LINE_LIMIT, WorkerSpec, encode, read_message
from proxy.server.workers.evict import apply_eviction, eviction
from proxy.server.workers.throttle import SharedThrottle

__all__ = ["WorkerLink", "main", "shared_key_config", "write_random_key"]

log = logging.getLogger(__name__)


def shared_key_config(config: Config, key_file: Path | None) -> Config:
    """``config`` with the instance's token key file when it names none (a random key per worker would
    make a token issued by one worker invalid on the others)."""
    token = config.auth.token
    if key_file is None or token.secret_file is not None:
        return config
    auth = dataclasses.replace(config.auth, token=dataclasses.replace(token, secret_file=key_file))
    return dataclasses.replace(config, auth=auth)


def write_random_key(path: Path) -> Path:
    """A random token key, 0600, that ``auth.keys`` accepts (as ``head -c 48 /dev/urandom | base64``)."""
    while True:  # a random key is refused only if it happens to spell a word (about once in 10^7)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(base64.b64encode(secrets.token_bytes(48)) + b"\n")
        with contextlib.suppress(ValueError):
            read_token_key(path)
            return path


class WorkerLink:
    """This worker's end of the supervisor: sockets, channel, shared throttle (a ``WorkerRole``)."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self.sockets = [socket.socket(fileno=fd) for fd in spec.listen_fds]
        self.throttle = SharedThrottle(self._send)
        self._writer: asyncio.StreamWriter | None = None
        self._listening: asyncio.Task[None] | None = None
        self._stop: Callable[[], None] | None = None
        self._reload: Callable[[], None] | None = None
        self._reload_waiting = False
        self._app: web.Application | None = None  # the public app, once attached: its cache evicts relayed keys
        self.gone = False
        self.orphaned = False  # the supervisor went first (killed): nobody else will clean up after us
        self.ready = False
        self.reported = False  # why start-up failed has reached the supervisor

    # -- the channel ----------------------------------------------------------------
    async def connect(self) -> None:
        control = socket.socket(fileno=self.spec.control_fd)
        reader, self._writer = await asyncio.open_unix_connection(sock=control, limit=LINE_LIMIT)
        self._listening = asyncio.get_running_loop().create_task(self._listen(reader))

    def _send(self, message: dict[str, Any]) -> bool:
        writer = self._writer
        if writer is None or self.gone or writer.is_closing():
            return False
        writer.write(encode(message))
        return True

    async def _listen(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                try:
                    message = await read_message(reader)
                except ValueError as exc:
                    log.error("unreadable message from the supervisor: %s", exc)
                    continue
                if message is None:
                    break
                if message.get("op") == "reload":
                    self._reload_now()
                elif message.get("op") == "evict":
                    apply_eviction(message, self._evict_here)
                elif "id" in message:
                    self.throttle.answered(message)
        except OSError:
            pass  # the same as end of file: the supervisor is gone
        finally:
            self.gone = True
            self.throttle.close()
            if self._stop is not None:
                self.orphaned = True
                log.warning("the supervisor is gone: stopping (no new connections; draining)")
                self._stop()

    def _reload_now(self) -> None:
        if self._reload is None:
            self._reload_waiting = True  # still starting: reload once serving
        else:
            self._reload()

    async def close(self) -> None:
        self._stop = None  # stopped already: the channel closing now is ours, not the supervisor going
        if self._listening is not None:
            self._listening.cancel()
            await asyncio.gather(self._listening, return_exceptions=True)
        if self._writer is not None:
            self._writer.close()
        for sock in self.sockets:  # normally closed by the listener already
            sock.close()

    # -- WorkerRole -------------------------------------------------------------------
    async def start_admin(self, app: web.Application, metrics: Metrics) -> web.AppRunner:
        runner = web.AppRunner(create_admin_app(app, metrics), access_log=None)
        await runner.setup()
        try:
            await web.UnixSite(runner, self.spec.admin_socket).start()
        except OSError:
            await runner.cleanup()
            raise
        return runner

    def adjust(self, config: Config) -> Config:
        return shared_key_config(config, self.spec.token_key_file)

    def attach(self, app: web.Application) -> None:
        runtime = app[LIVE].runtime
        gate = runtime.gate
        if gate.throttle is not None:  # throttling is on: this worker's own counters would be 1/N of the truth
            gate.throttle = self.throttle  # type: ignore[assignment]  # awaited by Gate.login
        self._app = app
        runtime.cache.on_evict = self._evicted  # the other workers' caches must forget it too

    def _evicted(self, key: Key) -> None:
        """A DELETE the registry accepted through this worker: the supervisor tells the others."""
        if not self._send(eviction(key)):
            log.warning("eviction of %s@%s not relayed: the supervisor is gone", key[0], key[2])

    def _evict_here(self, key: Key) -> None:
        """One relayed from another worker: the cache in force now (a reload may have made a new one)."""
        live = None if self._app is None else self._app.get(LIVE)
        if live is not None:  # before start-up this worker's cache is empty: nothing to forget
            live.runtime.cache.store.evict(key[0], key[2])

    def started(self, *, stop: Callable[[], None], reload: Callable[[], None]) -> None:
        self._stop, self._reload = stop, reload
        self.ready = True
        self._send({"op": "ready", "pid": os.getpid()})
        if self.gone:
            stop()
        elif self._reload_waiting:
            self._reload_waiting = False
            reload()

    # -- the process ------------------------------------------------------------------
    async def run(self) -> None:
        await self.connect()
        try:
            await serve(self.spec.config, worker=self)
        except (OSError, ValueError) as exc:
            if not self.ready and self._send({"op": "error", "error": str(exc)}):
                assert self._writer is not None
                with contextlib.suppress(OSError):
                    await self._writer.drain()
                    self.reported = True
            raise
        finally:
            await self.close()


def _loop_factory(uvloop: bool) -> Callable[[], asyncio.AbstractEventLoop] | None:
    if not uvloop:
        return None
    import uvloop as _uvloop  # the supervisor runs on it, so it is installed

    return _uvloop.new_event_loop


def main() -> int:
    """The worker process; exit status 1 when it cannot start (the supervisor has been told why)."""
    # Until serve() installs its handlers: a reload comes over the channel, Ctrl-C is the supervisor's
    for sig in (signal.SIGHUP, signal.SIGUSR1, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    spec: WorkerSpec = pickle.load(sys.stdin.buffer)  # written by the supervisor, nobody else
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format=f"%(asctime)s %(levelname)s %(name)s [worker {spec.index}]: %(message)s")
    link = WorkerLink(spec)
    try:
        with asyncio.Runner(loop_factory=_loop_factory(spec.uvloop)) as runner:
            runner.run(link.run())
    except (OSError, ValueError) as exc:
        if not link.reported:
            log.error("cannot start: %s", exc)
        return 1
    if link.orphaned:  # the supervisor's directory: admin sockets and the random token key
        shutil.rmtree(Path(spec.admin_socket).parent, ignore_errors=True)
    return 0
