"""The supervisor: binds the public sockets once, keeps ``workers`` processes serving them, relays signals.

The model is gunicorn's arbiter and uvicorn's multiprocess supervisor: the
parent binds (so a port in use fails start-up once, with the same message),
starts N shared-nothing workers that inherit the listening sockets
(``pass_fds``; the kernel gives each accepted connection to one worker) and
never serves a request itself. Then:

* a worker that dies is started again, after 0.5 s doubling to 30 s while
  it keeps dying young (a worker that served for 10 s starts the count over);
  its unresolved login reservations count as failures, and its counters as
  last scraped are kept in ``/metrics``;
* SIGHUP reloads all: the supervisor re-reads ``proxy.yml`` for its own part
  (the throttle, and the config a restarted worker gets) and sends every
  worker ``reload``, which runs the same reload as a single process's SIGHUP;
* SIGTERM/SIGINT drains all: the supervisor closes its copy of the listening
  sockets, each worker stops accepting (so new connections are refused, as
  with one process) and gives transfers in flight ``timeouts.grace``
  seconds; a worker still running :data:`KILL_MARGIN` seconds after that is
  killed;
* the pid file is this process's, so ``registry-auth-proxy reload`` and
  ``systemctl reload`` reach it, and the admin listener is this process's
  (``proxy.server.workers.aggregate``).

Start-up waits until every worker serves; one that cannot start (a bad
certificate, an unusable token key) stops the others and its reason is the
supervisor's ``cannot start:`` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, ProcessCollector

from proxy.config import Config, ConfigError, load_config
from proxy.observability.admin import serve_admin
from proxy.observability.metrics import PREFIX
from proxy.server.lifecycle import BACKLOG
from proxy.server.listener import _listening_sockets  # the same sockets a single process binds
from proxy.server.reload import RESTART_ONLY
from proxy.server.workers.aggregate import create_supervisor_admin
from proxy.server.workers.channel import LINE_LIMIT, WorkerSpec, read_message
from proxy.server.workers.evict import relay_eviction
from proxy.server.workers.merge import Merger
from proxy.server.workers.process import WorkerProcess, describe_exit
from proxy.server.workers.throttle import new_throttle
from proxy.server.workers.worker import shared_key_config, write_random_key

__all__ = ["KILL_MARGIN", "Supervisor", "supervise"]

log = logging.getLogger(__name__)

RESTART_MIN, RESTART_MAX = 0.5, 30.0
STABLE_AFTER = 10.0  # seconds a worker must serve before its restart delay starts over
START_TIMEOUT = 60.0
KILL_MARGIN = 10.0
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)
SOURCE_ROOT = str(Path(__file__).resolve().parents[3])  # where ``proxy`` is imported from, for the workers


class Supervisor:
    """The workers of one instance and what they share: sockets, throttle, metrics of the dead, the key."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.throttle = new_throttle(config)
        self.rundir = Path(tempfile.mkdtemp(prefix="rap-"))  # 0700: the admin sockets and the token key
        # used whenever auth.token.secret_file is unset, now or after a reload: one key for every worker
        self.key_file = write_random_key(self.rundir / "token.key")
        if config.auth.token.secret_file is None:
            log.warning("auth.token.secret_file is not set: the %d workers share a random key; tokens die with "
                        "this instance and replicas will not accept each other's tokens (share a secret_file)",
                        config.workers)
        self.sockets: list[socket.socket] = []
        self.workers = [WorkerProcess(i, str(self.rundir / f"worker-{i}.sock")) for i in range(config.workers)]
        self.merger = Merger()
        self.stopping = asyncio.Event()
        self._keepers: list[asyncio.Task[None]] = []
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)  # this process's share of process_* (summed with the workers')
        Gauge(f"{PREFIX}_workers", "Worker processes serving now (workers: N)",
              registry=self.registry).set_function(lambda: sum(w.ready for w in self.workers))
        self.restarts = Counter(f"{PREFIX}_worker_restarts", "Workers started again after one died",
                                registry=self.registry)

    def bind(self) -> None:
        host, port = self.config.listen_host, self.config.listen_port
        infos = socket.getaddrinfo(host or None, port, socket.AF_UNSPEC, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
        self.sockets = _listening_sockets(infos, BACKLOG)

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()
        shutil.rmtree(self.rundir, ignore_errors=True)

    # -- processes ------------------------------------------------------------------
    def _spec(self, worker: WorkerProcess, control_fd: int) -> WorkerSpec:
        uvloop = type(asyncio.get_running_loop()).__module__.startswith("uvloop")
        return WorkerSpec(worker.index, shared_key_config(self.config, self.key_file),
                          tuple(s.fileno() for s in self.sockets), control_fd, worker.admin_socket,
                          uvloop=uvloop, token_key_file=self.key_file)

    async def _spawn(self, worker: WorkerProcess) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            spec = self._spec(worker, theirs.fileno())
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join(p for p in (SOURCE_ROOT, env.get("PYTHONPATH")) if p)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "proxy.server.workers", f"--worker={worker.index}",
                stdin=asyncio.subprocess.PIPE, pass_fds=(*spec.listen_fds, spec.control_fd), env=env)
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours, limit=LINE_LIMIT)
        worker.begin(proc, writer, asyncio.get_running_loop().create_task(self._listen(worker, reader)))
        assert proc.stdin is not None
        try:
            proc.stdin.write(pickle.dumps(spec))
            await proc.stdin.drain()
        except OSError:
            pass  # it died at once: its exit status says so
        finally:
            proc.stdin.close()
        log.info("worker %d started (pid %d)", worker.index, proc.pid)

    async def _listen(self, worker: WorkerProcess, reader: asyncio.StreamReader) -> None:
        """The worker's messages until its end of the channel closes (it exited)."""
        try:
            while True:
                try:
                    message = await read_message(reader)
                except ValueError as exc:
                    log.error("worker %d: unreadable message: %s", worker.index, exc)
                    continue
                if message is None:
                    break
                self._on_message(worker, message)
        except OSError:
            pass
        finally:
            worker.end()

    def _on_message(self, worker: WorkerProcess, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "ready":
            worker.serving()
            if worker.restarts:
                log.info("worker %d (pid %s) is serving", worker.index, worker.pid)
        elif op == "error":
            worker.failed(str(message.get("error")))
        elif op == "evict":  # a DELETE the registry accepted through this worker: the others evict too
            try:
                relay_eviction(worker, self.workers, message)
            except ValueError as exc:
                log.error("worker %d: bad eviction: %s", worker.index, exc)
        else:
            try:
                reply = worker.reservations.answer(self.throttle, message)
            except ValueError as exc:
                log.error("worker %d: bad throttle message: %s", worker.index, exc)
                return
            if reply is not None:
                worker.send(reply)

    async def start(self) -> None:
        """Start every worker and wait until all serve; ValueError saying why when one cannot."""
        for worker in self.workers:
            await self._spawn(worker)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                problems = await asyncio.gather(*(w.first_word() for w in self.workers))
        except TimeoutError:
            raise ValueError(f"the workers did not start within {START_TIMEOUT:g}s") from None
        for problem in problems:
            if problem is not None:
                raise ValueError(problem)
        self._keepers = [asyncio.get_running_loop().create_task(self._keep(w)) for w in self.workers]

    async def _keep(self, worker: WorkerProcess) -> None:
        """Start the worker again whenever it dies, until the supervisor stops."""
        delay = RESTART_MIN
        while True:
            code = await worker.wait()
            self.merger.retire(worker.index)
            if self.stopping.is_set():
                return
            lived = time.monotonic() - worker.started_at
            if lived >= STABLE_AFTER:
                delay = RESTART_MIN
            log.error("worker %d (pid %s) %s after %.0fs; starting a new one in %gs", worker.index, worker.pid,
                      describe_exit(code), lived, delay)
            while True:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), delay)
                    return
                delay = min(delay * 2, RESTART_MAX)
                try:
                    await self._spawn(worker)
                    break
                except OSError as exc:
                    log.error("cannot start worker %d: %s; trying again in %gs", worker.index, exc, delay)
            worker.restarts += 1
            self.restarts.inc()

    async def stop(self) -> None:
        """Refuse new connections, let every worker drain for ``timeouts.grace``, kill what outlives that."""
        self.stopping.set()
        for sock in self.sockets:  # the workers close theirs as they stop: then the port refuses
            sock.close()
        running = [w for w in self.workers if w.alive]
        for worker in running:
            worker.signal(signal.SIGTERM)
        try:
            async with asyncio.timeout(self.config.timeouts.grace + KILL_MARGIN):
                await asyncio.gather(*(w.wait() for w in running))
        except TimeoutError:
            for worker in running:
                if worker.alive:
                    log.error("worker %d (pid %s) still running %gs after the drain time; killed", worker.index,
                              worker.pid, KILL_MARGIN)
                    worker.signal(signal.SIGKILL)
            await asyncio.gather(*(w.wait() for w in running))
        await asyncio.gather(*self._keepers, return_exceptions=True)

    # -- signals --------------------------------------------------------------------
    def reload(self) -> None:
        """SIGHUP: the supervisor's part of the config (throttle, what a restarted worker gets), then every worker."""
        old = self.config
        try:
            new = load_config(old.path)
        except ConfigError as exc:
            log.error("SIGHUP: the supervisor keeps the old config; the new one does not load: %s", exc)
        else:
            pending = [name for name in (*RESTART_ONLY, "workers") if getattr(old, name) != getattr(new, name)]
            effective = dataclasses.replace(new, **{name: getattr(old, name) for name in pending})
            if effective.throttle != old.throttle:  # unchanged settings keep the counters: no free attempts
                self.throttle = new_throttle(effective)
            self.config = effective
            if "workers" in pending:
                log.warning("SIGHUP: workers changed in %s; it takes effect after a restart", old.path)
        told = sum(w.send({"op": "reload"}) for w in self.workers)
        log.info("SIGHUP: %d of %d workers told to reload", told, len(self.workers))

    def debug(self) -> None:
        """SIGUSR1: each serving worker logs its own counts."""
        for worker in self.workers:
            if worker.ready:
                worker.signal(signal.SIGUSR1)

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers if w.pid is not None]


async def _started(supervisor: Supervisor, stop: asyncio.Event) -> bool:
    """Start the workers; False if SIGTERM came first (what had started is stopped by the caller)."""
    loop = asyncio.get_running_loop()
    starting = loop.create_task(supervisor.start())
    stopped = loop.create_task(stop.wait())
    try:
        await asyncio.wait((starting, stopped), return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
        if not starting.done():
            starting.cancel()
        await asyncio.gather(starting, stopped, return_exceptions=True)
    if starting.cancelled():
        return False
    starting.result()  # raises why start-up failed
    return True


async def supervise(config: Config) -> None:
    """``workers`` > 1: run until SIGTERM/SIGINT; raises OSError/ValueError (all stopped) if start-up fails."""
    loop = asyncio.get_running_loop()
    supervisor = Supervisor(config)
    try:
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(supervisor.close)
            supervisor.bind()
            if config.admin.listen:  # served through the drain: gc polls /inflight
                admin = await serve_admin(config.admin.listen, create_supervisor_admin(supervisor))
                stack.push_async_callback(admin.cleanup)
            stack.push_async_callback(supervisor.stop)
            stop = asyncio.Event()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            loop.add_signal_handler(signal.SIGINT, stop.set)
            loop.add_signal_handler(signal.SIGHUP, supervisor.reload)
            loop.add_signal_handler(signal.SIGUSR1, supervisor.debug)
            if await _started(supervisor, stop):
                log.info("listening on %s://%s with %d workers (pids %s), forwarding /v2 to %s (%s challenge)",
                         "https" if config.tls else "http", config.listen, config.workers,
                         " ".join(map(str, supervisor.pids())), config.backend, config.auth.challenge)
                await stop.wait()
            log.info("stopping: no new connections; up to %gs for transfers in flight in each worker",
                     config.timeouts.grace)
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
    log.info("stopped")
