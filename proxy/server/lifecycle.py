"""Running the proxy: listeners, TLS, signals, graceful drain, and nothing left behind.

SIGTERM/SIGINT stop accepting, then give transfers in flight
``timeouts.grace`` seconds to finish: downloads, and uploads whose body is
still arriving (``GuardedSite.stop`` keeps those connections reading). SIGHUP reloads (``proxy.server.reload``).
SIGUSR1 logs task, fd and connection counts (what the leak tests compare).

Every resource is entered into one exit stack as soon as it exists, so a
start-up that fails half-way (port in use, unusable token key, admin port
taken) closes the backend pool, the password pool and the access log it had
already opened, instead of leaking them.

With ``workers: N`` (N > 1) the same :func:`serve` runs in each worker
process, given a :class:`WorkerRole` (``proxy.server.workers``): the
listening sockets come from the supervisor, the admin listener is a private
one the supervisor scrapes, and the login throttle is the supervisor's.
With one worker there is no role and nothing of this runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable
from typing import Any, Protocol

from aiohttp import web

from proxy.config import Config
from proxy.http import create_app
from proxy.http.keys import STATS
from proxy.observability.accesslog import AccessSink, access_log, make_access_logger
from proxy.observability.admin import start_admin
from proxy.observability.bodybytes import count_body_bytes
from proxy.observability.metrics import Metrics
from proxy.server.aiohttp_seams import GuardedSite
from proxy.server.reload import on_sighup
from proxy.server.tls import ReloadableTLS
from proxy.ui import install as install_ui

__all__ = ["Flush", "WorkerRole", "debug_counts", "serve"]

log = logging.getLogger(__name__)

READ_BUFSIZE = 256 * 1024
BACKLOG = 1024
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1)


class WorkerRole(Protocol):
    """What a worker process adds to :func:`serve` (implemented by ``proxy.server.workers.worker``)."""

    sockets: list[socket.socket]  # listening already, shared with the other workers

    async def start_admin(self, app: web.Application, metrics: Metrics) -> web.AppRunner:
        """The private admin listener the supervisor scrapes (/metrics, /inflight, /readyz)."""

    def adjust(self, config: Config) -> Config:
        """A re-read config as this worker must run it (the instance's token key when the file names none)."""

    def attach(self, app: web.Application) -> None:
        """Swap the supervisor's login throttle into the runtime in force (after start-up and every reload)."""

    def started(self, *, stop: Callable[[], None], reload: Callable[[], None]) -> None:
        """Serving: tell the supervisor; from now on its messages may stop or reload this worker."""


class Flush:
    """After the drain, wait (within what is left of ``timeouts.grace``) for closed connections to be written out.

    aiohttp's drain ends when the handlers have written their last bytes into
    the transports, not when the transports have sent them: a download whose
    client reads slowly could still hold hundreds of KiB in its buffer, and
    the process exiting then cut them off. A transport reports
    ``connection_lost`` (and gives back its slot in the connection guard)
    only once its buffer is flushed, so this waits for the guards to empty.
    """

    POLL = 0.05

    def __init__(self, grace: float) -> None:
        self.grace = grace
        self.sites: list[GuardedSite] = []
        self.deadline: float | None = None  # set when the drain starts; never set: nothing to wait for

    def start(self) -> None:
        self.deadline = asyncio.get_running_loop().time() + self.grace

    async def wait(self) -> None:
        loop = asyncio.get_running_loop()
        while (self.deadline is not None and loop.time() < self.deadline
               and any(site.guard.open for site in self.sites)):
            await asyncio.sleep(self.POLL)


def handler_options(config: Config, sink: AccessSink | None, metrics: Metrics) -> dict[str, Any]:
    """The per-connection options, given to the runner's server and to our handlers alike."""
    return {
        # always installed: the same hook records the metrics
        "access_log_class": make_access_logger(sink, metrics, config.log.format),
        "access_log": access_log,
        "keepalive_timeout": config.limits.keepalive_timeout,
        "read_bufsize": READ_BUFSIZE,
        "auto_decompress": False,  # pass bytes through untouched
    }


def debug_counts(runner: web.BaseRunner) -> str:
    """``tasks=N fds=M connections=K``: what leak tests compare (logged on SIGUSR1)."""
    try:
        fds = len(os.listdir("/proc/self/fd"))
    except OSError:
        fds = -1
    connections = len(runner.server.connections) if runner.server is not None else 0
    return f"tasks={len(asyncio.all_tasks())} fds={fds} connections={connections}"


async def serve(config: Config, worker: WorkerRole | None = None) -> None:
    """Run until SIGTERM/SIGINT; raises OSError/ValueError (with everything closed) if start-up fails."""
    tls = ReloadableTLS(config.tls.cert, config.tls.key) if config.tls else None
    if tls is None:
        log.warning("tls is off: serving plain HTTP on %s; only do this behind a TLS-terminating proxy",
                    config.listen)
    loop = asyncio.get_running_loop()
    try:
        async with contextlib.AsyncExitStack() as stack:
            app = create_app(config, extend=install_ui)  # the web catalog's routes, before the API's
            count_body_bytes(app)  # body bytes for the access log and sent_bytes (before the app freezes)
            metrics = Metrics(app[STATS])
            sink = AccessSink(config.log.file) if config.log.access else None
            if sink is not None:
                stack.callback(sink.close)
            if worker is not None:  # the supervisor's admin listener reports this worker's
                admin = await worker.start_admin(app, metrics)
                stack.push_async_callback(admin.cleanup)
            elif config.admin.listen:  # before the runner: on the way out it is cleaned after the drain
                admin = await start_admin(config.admin.listen, app, metrics)
                stack.push_async_callback(admin.cleanup)
            options = handler_options(config, sink, metrics)
            runner = web.AppRunner(app, shutdown_timeout=config.timeouts.grace, **options)
            flush = Flush(config.timeouts.grace)
            stack.push_async_callback(flush.wait)  # after the runner's drain: what it closed is sent
            stack.push_async_callback(runner.cleanup)
            await runner.setup()  # the app's start-up builds the runtime (token key, user files, backend pool)
            if worker is not None:
                worker.attach(app)
            site = GuardedSite(runner, config.listen_host, config.listen_port, limits=config.limits,
                               handler_options=options, ssl_context=tls.listening if tls else None,
                               backlog=BACKLOG, proxy_protocol=config.proxy_protocol.trusted,
                               trusted_proxies=config.trusted_proxies,
                               sockets=None if worker is None else worker.sockets)
            await site.start()
            flush.sites.append(site)
            log.info("listening on %s://%s, forwarding /v2 to %s (%s challenge)",
                     "https" if tls else "http", config.listen, config.backend, config.auth.challenge)
            if config.proxy_protocol.trusted:
                log.info("PROXY protocol required from %s (and refused from anywhere else)",
                         ", ".join(map(str, config.proxy_protocol.trusted)))
            stop = asyncio.Event()
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            loop.add_signal_handler(signal.SIGINT, stop.set)
            if worker is None:
                loop.add_signal_handler(signal.SIGHUP, on_sighup, app, tls, sink)
            else:
                def reload() -> None:  # SIGHUP here, or the supervisor's reload message
                    on_sighup(app, tls, sink, worker.adjust)
                    worker.attach(app)

                loop.add_signal_handler(signal.SIGHUP, reload)
                worker.started(stop=stop.set, reload=reload)
            loop.add_signal_handler(signal.SIGUSR1, lambda: log.info("debug: %s", debug_counts(runner)))
            await stop.wait()
            log.info("stopping: no new connections; up to %gs for transfers in flight", config.timeouts.grace)
            flush.start()
    finally:
        for sig in SIGNALS:
            loop.remove_signal_handler(sig)
    log.info("stopped")
