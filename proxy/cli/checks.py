"""``check-config``: validate, show the effective policy, and warn about what will bite.

The config has already parsed when we get here (errors exit earlier); this
adds the checks that need the outside world: files, the backend, the key.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from auth.userfiles.store import UserStore
from proxy.config import Config
from proxy.config.access import access_table

__all__ = ["check_config"]


def _backend_answers(url: str) -> str | None:
    """None when ``GET /v2/`` answers at all; otherwise why not."""
    try:
        with urllib.request.urlopen(url + "/v2/", timeout=3):
            return None
    except urllib.error.HTTPError:
        return None  # it answered; a 401 from a registry with its own auth is still an answer
    except (urllib.error.URLError, OSError) as exc:
        return str(getattr(exc, "reason", exc))


def check_config(config: Config) -> int:
    """Print the effective settings, the access table and every warning; 0 (warnings do not fail)."""
    warnings: list[str] = []
    print(f"config:    {config.path}")
    print(f"listen:    {'https' if config.tls else 'http'}://{config.listen}")
    if config.tls is None:
        warnings.append("tls is off: plain HTTP; only behind a TLS-terminating proxy")
    print(f"backend:   {config.backend}")
    print(f"challenge: {config.auth.challenge} (token path {config.auth.token.path}, "
          f"service {config.auth.token.service!r}, ttl {config.auth.token.ttl}s)")
    if config.auth.token.secret_file is None:
        warnings.append("auth.token.secret_file not set: a random key per process; replicas need a shared one")
    elif not config.auth.token.secret_file.is_file():
        warnings.append(f"auth.token.secret_file {config.auth.token.secret_file} does not exist")
    for label, path in (("htpasswd", config.auth.htpasswd), ("groups", config.auth.groups)):
        if path is not None and not path.is_file():
            warnings.append(f"auth.{label} {path} does not exist")
    store = UserStore(config.auth.htpasswd, config.auth.groups, cache_ttl=0)
    snap = store.snapshot()
    warnings.extend(snap.users.warnings + snap.groups.warnings)
    print(f"users:     {len(snap.users.hashes)} ({len(snap.users.disabled)} disabled)")
    print(f"admin:     {'http://' + config.admin.listen if config.admin.listen else 'off'} "
          "(/metrics /healthz /readyz /inflight)")
    state = "ON: pushes and deletes get 503" if config.maintenance_file.exists() else "off"
    print(f"maintenance: {state} ({config.maintenance_file})")
    print("access:")
    for line in access_table(config.access):
        print(line)
    why = _backend_answers(config.backend)
    if why is not None:
        warnings.append(f"backend {config.backend} does not answer GET /v2/ ({why}); clients will get 502")
    for warning in warnings:
        print(f"warning: {warning}")
    print("config OK" + (f" with {len(warnings)} warning(s)" if warnings else ""))
    return 0
