"""Running the app: listening socket, TLS, signals, graceful drain.

SIGTERM stops accepting, then gives transfers in flight ``timeouts.grace``
seconds to finish. SIGHUP re-reads proxy.yml (see ``proxy.reload``), reloads
the certificate (a bad one keeps the old), re-reads the user and group files
and reopens the access log.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from aiohttp import web

from proxy import limits
from proxy.accesslog import AccessSink, access_log, make_access_logger
from proxy.admin import start_admin
from proxy.app import RUNTIME, create_app
from proxy.config import Config
from proxy.metrics import METRICS
from proxy.reload import reload_config
from proxy.tls import ReloadableTLS

log = logging.getLogger("registry_auth_proxy")

READ_BUFSIZE = 256 * 1024


ACCESS_SINK = web.AppKey("access_sink", AccessSink)


def make_runner(config: Config) -> web.AppRunner:
    app = create_app(config)
    sink = AccessSink(config.log.file) if config.log.access else None
    if sink is not None:
        app[ACCESS_SINK] = sink
        app.on_cleanup.append(lambda _app: _close(sink))
    return web.AppRunner(
        app,
        shutdown_timeout=config.timeouts.grace,
        # always installed: the same hook records the metrics
        access_log_class=make_access_logger(sink, app[METRICS], config.log.format, config.auth.token.path),
        access_log=access_log,
        keepalive_timeout=config.limits.keepalive_timeout,
        read_bufsize=READ_BUFSIZE,
        auto_decompress=False,  # pass bytes through untouched
    )


async def _close(sink: AccessSink) -> None:
    sink.close()


def _reload(runner: web.AppRunner, tls: ReloadableTLS | None) -> None:
    reload_config(runner.app[RUNTIME])
    if tls is not None:
        try:
            tls.reload()
            log.info("SIGHUP: reloaded certificate %s", tls.cert)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            log.error("SIGHUP: keeping the old certificate; new one unusable: %s", exc)
    runtime = runner.app[RUNTIME]
    runtime.gate.store.reload(force=True)
    if ACCESS_SINK in runner.app:
        try:
            runner.app[ACCESS_SINK].reopen()
        except OSError as exc:
            log.error("SIGHUP: cannot reopen the access log %s: %s", runtime.config.log.file, exc)
    log.info("SIGHUP: re-read %s and %s", runtime.config.auth.htpasswd, runtime.config.auth.groups)


async def serve(config: Config) -> None:
    tls = ReloadableTLS(config.tls.cert, config.tls.key) if config.tls else None
    if tls is None:
        log.warning("tls is off: serving plain HTTP on %s; only do this behind a TLS-terminating proxy",
                    config.listen)
    runner = make_runner(config)
    await runner.setup()
    try:
        admin = await start_admin(config.admin.listen, runner.app) if config.admin.listen else None
    except OSError:
        await runner.cleanup()
        raise
    limits.install(runner, config.limits)  # JSON errors, max_connections, header_timeout
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
    loop.add_signal_handler(signal.SIGUSR1, lambda: log.info("debug: %s", limits.debug_counts(runner)))
    try:
        await stop.wait()
        log.info("stopping: no new connections; up to %gs for transfers in flight", config.timeouts.grace)
    finally:
        await runner.cleanup()
        if admin is not None:
            await admin.cleanup()
    log.info("stopped")
