"""SIGHUP: re-read ``proxy.yml`` and apply what can change without a restart.

Policy and auth (``access``, ``auth``, ``throttle``, ``maintenance_file``)
take effect for the next request. What is bound at start-up (``listen``,
``tls`` paths, ``backend``, ``admin``, ``limits``, ``timeouts``, ``log``) is
reported as needing a restart. A config that does not load keeps the old one
running, and the log says why: a typo in a reload must not open or close the door.
"""

from __future__ import annotations

import dataclasses
import logging

from auth.users import UserStore
from proxy.app import Runtime, build_gate, token_key
from proxy.config import Config, ConfigError, load_config
from proxy.maintenance import MaintenanceFlag
from proxy.verify import Verifier

log = logging.getLogger("registry_auth_proxy")

RESTART_ONLY = ("listen_host", "listen_port", "tls", "backend", "admin", "limits", "timeouts", "log")


def restart_needed(old: Config, new: Config) -> list[str]:
    return [name for name in RESTART_ONLY if getattr(old, name) != getattr(new, name)]


def reload_config(runtime: Runtime) -> bool:
    """Apply a re-read config to ``runtime`` in place; False (old config kept) on any error."""
    old = runtime.config
    try:
        new = load_config(old.path)
        same_key = new.auth.token.secret_file == old.auth.token.secret_file
        key = runtime.token_key if same_key else token_key(new)
    except (ConfigError, OSError, ValueError) as exc:
        log.error("SIGHUP: keeping the old config; the new one does not load: %s", exc)
        return False
    store = runtime.gate.store
    verifier = runtime.gate.verifier
    if (new.auth.htpasswd, new.auth.groups, new.auth.cache_ttl) != (
        old.auth.htpasswd, old.auth.groups, old.auth.cache_ttl
    ):
        store = UserStore(new.auth.htpasswd, new.auth.groups, cache_ttl=new.auth.cache_ttl)
        runtime.gate.verifier.close()  # running checks finish; new ones go to the new pool
        verifier = Verifier(store)
    gate = build_gate(new, store, verifier, key)
    gate.on_throttled = runtime.gate.on_throttled
    if new.throttle == old.throttle:
        gate.throttle = runtime.gate.throttle  # a reload must not forgive failed logins
    runtime.gate = gate
    runtime.token_key = key
    if new.maintenance_file != old.maintenance_file:
        runtime.maintenance = MaintenanceFlag(new.maintenance_file)
    pending = restart_needed(old, new)
    for name in pending:
        log.warning("SIGHUP: %s changed in %s; it takes effect after a restart", name, old.path)
    # runtime.config says what is in effect: the new policy, the old bindings
    runtime.config = dataclasses.replace(new, **{name: getattr(old, name) for name in pending})
    log.info("SIGHUP: config reloaded from %s (access, auth, throttle applied)", old.path)
    return True
