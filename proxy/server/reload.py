"""SIGHUP: re-read ``proxy.yml``, the certificate and the user files, and reopen the access log.

Policy and auth (``access``, ``auth``, ``throttle``, ``maintenance_file``)
take effect for the next request: a new runtime is built by the same
function as at start-up (``proxy.http.build_runtime``) and swapped in whole.
What is bound at start-up (``listen``, ``tls`` paths, ``backend``, ``admin``,
``limits``, ``timeouts``, ``log``, and the listener's ``proxy_protocol`` and
``trusted_proxies``, which decide whose address a connection has before any
request) is reported as needing a restart. A config
that does not load keeps the old one running and the log says why: a typo
in a reload must not open or close the door.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from aiohttp import web

from proxy.config import Config, ConfigError, load_config
from proxy.http import build_runtime
from proxy.http.keys import LIVE, STATS
from proxy.observability.accesslog import AccessSink
from proxy.server.tls import ReloadableTLS

__all__ = ["RESTART_ONLY", "on_sighup", "reload_config", "restart_needed"]

log = logging.getLogger(__name__)

RESTART_ONLY = ("listen_host", "listen_port", "tls", "backend", "admin", "limits", "timeouts", "log",
                "proxy_protocol", "trusted_proxies")


def restart_needed(old: Config, new: Config) -> list[str]:
    return [name for name in RESTART_ONLY if getattr(old, name) != getattr(new, name)]


def reload_config(app: web.Application, adjust: Callable[[Config], Config] | None = None) -> bool:
    """Swap in a runtime built from the re-read config; False (old one kept) on any error.

    ``adjust`` (a worker's, ``proxy.server.workers``) fills in what the
    supervisor decided for the whole instance, before it is compared.
    """
    live = app[LIVE]
    old = live.runtime
    path = old.config.path
    try:
        new = load_config(path)
    except ConfigError as exc:
        log.error("SIGHUP: keeping the old config; the new one does not load: %s", exc)
        return False
    if adjust is not None:
        new = adjust(new)
    pending = restart_needed(old.config, new)
    # what is in effect: the new policy, the old bindings
    effective = dataclasses.replace(new, **{name: getattr(old.config, name) for name in pending})
    try:
        runtime = build_runtime(effective, old.upstream.session, app[STATS], previous=old)
    except (OSError, ValueError) as exc:
        log.error("SIGHUP: keeping the old config; the new one does not load: %s", exc)
        return False
    if runtime.gate.verifier is not old.gate.verifier:
        old.gate.verifier.close()  # checks already queued finish; new ones go to the new pool
    live.runtime = runtime
    for name in pending:
        log.warning("SIGHUP: %s changed in %s; it takes effect after a restart", name, path)
    log.info("SIGHUP: config reloaded from %s (access, auth, throttle applied)", path)
    return True


def on_sighup(app: web.Application, tls: ReloadableTLS | None, sink: AccessSink | None,
              adjust: Callable[[Config], Config] | None = None) -> None:
    store = app[LIVE].runtime.gate.store
    reload_config(app, adjust)
    if tls is not None:
        try:
            tls.reload()
            log.info("SIGHUP: reloaded certificate %s", tls.cert)
        except (OSError, ValueError) as exc:  # ssl.SSLError is an OSError
            log.error("SIGHUP: keeping the old certificate; new one unusable: %s", exc)
    runtime = app[LIVE].runtime
    if runtime.gate.store is store:  # a new store (other files) has just read them
        store.reload(force=True)
    if sink is not None:
        try:
            sink.reopen()
        except OSError as exc:
            log.error("SIGHUP: cannot reopen the access log %s: %s", runtime.config.log.file, exc)
    log.info("SIGHUP: re-read %s and %s", runtime.config.auth.htpasswd, runtime.config.auth.groups)
