"""Running the app: listening socket, TLS, signals, graceful drain.

SIGTERM stops accepting, then gives transfers in flight ``timeouts.grace``
seconds to finish. SIGHUP reloads the certificate (a bad one keeps the old)
and re-reads the user and group files.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from proxy import lowlevel
from proxy.accesslog import AccessLogger, access_log
from proxy.app import RUNTIME, create_app
from proxy.config import Config
from proxy.tls import ReloadableTLS

log = logging.getLogger("registry_auth_proxy")

READ_BUFSIZE = 256 * 1024


def make_runner(config: Config) -> web.AppRunner:
    return web.AppRunner(
        create_app(config),
        shutdown_timeout=config.timeouts.grace,
        access_log_class=AccessLogger,
        access_log=access_log if config.log.access else None,
        keepalive_timeout=75,
        read_bufsize=READ_BUFSIZE,
        auto_decompress=False,  # pass bytes through untouched
    )


def _reload(runner: web.AppRunner, tls: ReloadableTLS | None) -> None:
    if tls is not None:
        try:
            tls.reload()
            log.info("SIGHUP: reloaded certificate %s", tls.cert)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            log.error("SIGHUP: keeping the old certificate; new one unusable: %s", exc)
    runtime = runner.app[RUNTIME]
    runtime.gate.store.reload(force=True)
    log.info("SIGHUP: re-read %s and %s", runtime.config.auth.htpasswd, runtime.config.auth.groups)


async def serve(config: Config) -> None:
    tls = ReloadableTLS(config.tls.cert, config.tls.key) if config.tls else None
    if tls is None:
        log.warning("tls is off: serving plain HTTP on %s; only do this behind a TLS-terminating proxy",
                    config.listen)
    runner = make_runner(config)
    await runner.setup()
    lowlevel.install(runner)
    site = web.TCPSite(
        runner, config.listen_host, config.listen_port, ssl_context=tls.listening if tls else None,
        backlog=1024,
    )
    await site.start()
    log.info("listening on %s://%s, forwarding /v2 to %s (%s challenge)",
             "https" if tls else "http", config.listen, config.backend, config.auth.challenge)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    loop.add_signal_handler(signal.SIGHUP, _reload, runner, tls)
    try:
        await stop.wait()
        log.info("stopping: no new connections; up to %gs for transfers in flight", config.timeouts.grace)
    finally:
        await runner.cleanup()
    log.info("stopped")
