"""What the handlers need, built by one function used by start-up and by reload alike.

A :class:`Runtime` is immutable: a reload builds a new one from the new
config and swaps it into :class:`Live` whole, so a request sees one
consistent policy from start to end. What must survive a reload is carried
over from the previous runtime by :func:`build_runtime` itself: the token
key (unless its file changed), the user store and its password pool (unless
the files changed), the throttle's counters (unless its settings changed; a
reload must not forgive failed logins), the backend connection pool and the
digest cache (unless its settings changed).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import aiohttp

from auth.decision import Policy
from auth.digestcache import CacheCounters
from auth.keys import read_token_key
from auth.routes import Router
from auth.throttle import LoginThrottle
from auth.tokens import TokenAuthority, new_key
from auth.userfiles.store import UserStore
from proxy.config import Config
from proxy.http.cache import ResponseCache
from proxy.http.gate import Gate
from proxy.http.upstream import SKIP_AUTO, Upstream
from proxy.http.verify import Verifier
from proxy.ops.maintenance import MaintenanceFlag

__all__ = ["REFRESH_TTL", "Live", "Runtime", "Stats", "build_runtime", "load_token_key", "new_session"]

log = logging.getLogger(__name__)

REFRESH_TTL = 24 * 3600
BACKEND_SPARE = 8  # backend connections beyond max_connections: the admin readiness probe
READ_BUFSIZE = 256 * 1024


@dataclass
class Stats:
    """Counters kept by the request path and read by metrics and ``/inflight`` (they outlive reloads)."""

    requests_in_flight: int = 0
    writes_in_flight: int = 0  # what ``gc`` waits to reach 0
    throttled: int = 0  # requests refused by login throttling
    rate_limited: int = 0  # requests refused by limits.requests_per_second
    cache: CacheCounters = field(default_factory=CacheCounters)  # hits, misses, evictions, bytes held

    def throttle(self) -> None:
        self.throttled += 1


@dataclass(frozen=True)
class Runtime:
    """One consistent set of config, policy and connections."""

    config: Config
    router: Router
    gate: Gate
    upstream: Upstream
    maintenance: MaintenanceFlag
    token_key: bytes
    cache: ResponseCache  # content by digest in memory; kept across reloads unless ``cache`` changed


class Live:
    """The runtime in force: the one mutable slot, swapped whole by a reload."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime


def load_token_key(config: Config) -> bytes:
    """The shared key from ``auth.token.secret_file``, judged by ``auth.keys`` (ValueError if not random).

    ``check-config`` calls the same ``read_token_key``, so it refuses exactly
    the keys ``serve`` and a reload refuse (a placeholder, a pattern, text).
    """
    path = config.auth.token.secret_file
    if path is None:
        log.warning("auth.token.secret_file is not set: using a random key; tokens die with this "
                    "process and replicas will not accept each other's tokens (share a secret_file)")
        return new_key()
    return read_token_key(path)


def new_session(config: Config) -> aiohttp.ClientSession:
    """The backend connection pool: keep-alive, bytes untouched, no cookies, no decompression.

    Sized to the client limit: every client connection may have one backend
    request at a time (the forwarder's slots, ``Upstream.pool``), so the pool
    cannot run out before the connection limit does, and a wait here is
    never mistaken for a backend that does not connect (``timeouts.connect``).
    """
    timeout = aiohttp.ClientTimeout(
        total=None, connect=config.timeouts.connect, sock_connect=config.timeouts.connect,
        sock_read=config.timeouts.read,
    )
    connector = aiohttp.TCPConnector(limit=config.limits.max_connections + BACKEND_SPARE, keepalive_timeout=30,
                                     ttl_dns_cache=60)
    return aiohttp.ClientSession(
        connector=connector, timeout=timeout, auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar(),
        read_bufsize=READ_BUFSIZE, skip_auto_headers=SKIP_AUTO,  # once here, not rebuilt per request
    )


def _unchanged(previous: Runtime, config: Config, *fields: str) -> bool:
    """True when these dotted config fields are equal in the previous runtime's config and ``config``."""
    return all(_get(previous.config, f) == _get(config, f) for f in fields)


def _get(config: Config, dotted: str) -> object:
    value: object = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def build_runtime(config: Config, session: aiohttp.ClientSession, stats: Stats,
                  previous: Runtime | None = None) -> Runtime:
    """Build everything the handlers need from ``config``, reusing from ``previous`` what did not change.

    Raises (and builds nothing that needs closing) when the token key is
    unusable. The caller closes ``previous.gate.verifier`` when it was
    replaced (see ``proxy.server.reload``).
    """
    if previous is not None and _unchanged(previous, config, "auth.token.secret_file"):
        key = previous.token_key
    else:
        key = load_token_key(config)
    if previous is not None and _unchanged(previous, config, "auth.htpasswd", "auth.groups", "auth.robots",
                                           "auth.cache_ttl"):
        store, verifier = previous.gate.store, previous.gate.verifier
    else:
        store = UserStore(config.auth.htpasswd, config.auth.groups, cache_ttl=config.auth.cache_ttl,
                          robots=config.auth.robots)
        verifier = Verifier(store)
    throttle: LoginThrottle | None
    if previous is not None and _unchanged(previous, config, "throttle"):
        throttle = previous.gate.throttle  # a reload must not forgive failed logins
    elif config.throttle.enabled:
        t = config.throttle
        throttle = LoginThrottle(t.failures, t.window, failures_per_ip=t.failures_per_ip, slow_after=t.slow_after,
                                 max_delay=t.max_delay)
    else:
        throttle = None
    tok = config.auth.token
    policy = Policy(access=config.access, mode=config.auth.challenge, basic_realm=config.auth.realm,
                    service=tok.service, token_path=tok.path, token_realm=tok.realm)
    gate = Gate(
        policy=policy,
        store=store,
        verifier=verifier,
        tokens=TokenAuthority(key, tok.service, tok.issuer, tok.ttl),
        refresh_tokens=TokenAuthority(key, tok.service + "#refresh", tok.issuer, REFRESH_TTL),
        throttle=throttle,
        stats=stats,
    )
    # the backend and its limits are restart-only: a reload keeps the pool
    upstream = previous.upstream if previous is not None else Upstream(
        session, config.backend, body_timeout=config.limits.body_timeout,
        send_timeout=config.limits.send_timeout, pool=config.limits.max_connections,
        connect_timeout=config.timeouts.connect, read_timeout=config.timeouts.read)
    if previous is not None and _unchanged(previous, config, "maintenance_file"):
        maintenance = previous.maintenance
    else:
        maintenance = MaintenanceFlag(config.maintenance_file)
    if previous is not None and _unchanged(previous, config, "cache"):
        cache = previous.cache  # what is by digest stays true whatever else the reload changed
    else:
        cache = ResponseCache(config.cache, stats.cache, config.limits.send_timeout)
    return Runtime(config, Router(tok.path), gate, upstream, maintenance, key, cache)
