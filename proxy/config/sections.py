"""One parser per top-level section of ``proxy.yml``; defaults come from ``model``.

Each function takes the raw YAML value of its section and returns the frozen
dataclass, or raises :class:`~proxy.config.reader.ConfigError` naming the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from auth.access import Network
from auth.hosts import valid_host
from proxy.config.access import parse_access
from proxy.config.model import (
    DEFAULT_ADMIN_LISTEN,
    DEFAULT_BACKEND,
    DEFAULT_LISTEN,
    DEFAULT_MAINTENANCE_FILE,
    DEFAULT_PID_FILE,
    AdminConfig,
    AuthConfig,
    CacheConfig,
    Config,
    Limits,
    LogConfig,
    ProxyProtocol,
    Throttle,
    Timeouts,
    TLSConfig,
    TokenConfig,
    UIConfig,
)
from proxy.config.reader import Reader

__all__ = ["TOP_KEYS", "parse_config"]

def _off(value: object) -> bool:
    """``null``, ``false`` or ``off``; never 0 (``0 == False`` in Python: a 0 must be judged, not taken as off)."""
    return value is None or value is False or value == "off"


def _backend(r: Reader, value: object) -> str:
    if not isinstance(value, str):
        raise r.fail("backend", "a URL such as http://127.0.0.1:5000", value)
    try:
        parts = urlsplit(value)
    except ValueError:
        raise r.fail("backend", "http(s)://host:port with no path", value) from None
    if parts.username or parts.password:
        raise r.fail("backend", "http(s)://host:port with no credentials", "a URL with credentials (hidden)")
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok or parts.path not in ("", "/"):
        raise r.fail("backend", "http(s)://host:port with no path", value)
    if parts.query or parts.fragment:
        raise r.fail("backend", "http(s)://host:port with no query", value)
    return f"{parts.scheme}://{parts.netloc}"


def _tls(r: Reader, value: object) -> TLSConfig | None:
    if _off(value):
        return None
    data = r.section(value, "tls", {"cert", "key"})
    cert = r.file(data, "cert", "tls.cert", None)
    key = r.file(data, "key", "tls.key", None)
    if cert is None or key is None:
        raise r.fail("tls", "both cert and key (or `tls: off`)", value)
    for name, p in (("tls.cert", cert), ("tls.key", key)):
        if not p.is_file():
            raise r.fail(name, "an existing file", str(p))
    return TLSConfig(cert, key)


def _token(r: Reader, value: object) -> TokenConfig:
    data = r.section(value, "auth.token", {"secret_file", "ttl", "service", "path", "realm", "issuer"})
    default = TokenConfig()
    path = r.string(data, "path", "auth.token.path", default.path)
    if not path.startswith("/") or path.startswith("/v2"):
        raise r.fail("auth.token.path", "an absolute path outside /v2, such as /token", path)
    realm = data.get("realm")
    if realm is not None and (not isinstance(realm, str) or not realm.startswith(("https://", "http://"))):
        raise r.fail("auth.token.realm", "an absolute http(s) URL", realm)
    return TokenConfig(
        secret_file=r.file(data, "secret_file", "auth.token.secret_file", None),
        ttl=r.integer(data, "ttl", "auth.token.ttl", default.ttl, 10),
        service=r.string(data, "service", "auth.token.service", default.service),
        path=path,
        realm=realm,
        issuer=r.string(data, "issuer", "auth.token.issuer", default.issuer),
    )


def _auth(r: Reader, value: object) -> AuthConfig:
    data = r.section(value, "auth", {"realm", "htpasswd", "groups", "robots", "challenge", "cache_ttl",
                                     "token"})
    default = AuthConfig()
    challenge = data.get("challenge", default.challenge)
    if challenge not in ("bearer", "basic"):
        raise r.fail("auth.challenge", "bearer or basic", challenge)
    realm = r.string(data, "realm", "auth.realm", default.realm)
    if '"' in realm or "\\" in realm:
        raise r.fail("auth.realm", "a realm without quotes or backslashes", realm)
    htpasswd = r.file(data, "htpasswd", "auth.htpasswd", str(default.htpasswd))
    if htpasswd is None:
        raise r.fail("auth.htpasswd", "a file path", None)
    groups = r.file(data, "groups", "auth.groups", str(default.groups))  # null: no group file
    robots = r.file(data, "robots", "auth.robots", str(default.robots))  # null: no robot accounts
    return AuthConfig(
        realm=realm,
        htpasswd=htpasswd,
        groups=groups,
        robots=robots,
        challenge=challenge,
        cache_ttl=r.number(data, "cache_ttl", "auth.cache_ttl", default.cache_ttl, 0),
        token=_token(r, data.get("token")),
    )


def _timeouts(r: Reader, value: object) -> Timeouts:
    data = r.section(value, "timeouts", {"connect", "read", "grace"})
    d = Timeouts()
    return Timeouts(
        connect=r.number(data, "connect", "timeouts.connect", d.connect, 0.1),
        read=r.number(data, "read", "timeouts.read", d.read, 0.1),
        grace=r.number(data, "grace", "timeouts.grace", d.grace, 0),
    )


def _log(r: Reader, value: object) -> LogConfig:
    data = r.section(value, "log", {"access", "format", "file"})
    d = LogConfig()
    fmt = data.get("format", d.format)
    if fmt not in ("combined", "json"):
        raise r.fail("log.format", "combined or json", fmt)
    return LogConfig(access=r.boolean(data, "access", "log.access", d.access), format=fmt,
                     file=r.file(data, "file", "log.file", None))


def _limits(r: Reader, value: object) -> Limits:
    data = r.section(value, "limits", {"max_connections", "max_connections_per_ip", "header_timeout",
                                       "body_timeout", "send_timeout", "keepalive_timeout",
                                       "requests_per_second", "requests_burst"})
    d = Limits()
    rate = data.get("requests_per_second")
    burst = data.get("requests_burst")
    return Limits(
        max_connections=r.integer(data, "max_connections", "limits.max_connections", d.max_connections, 1),
        max_connections_per_ip=r.integer(data, "max_connections_per_ip", "limits.max_connections_per_ip",
                                         d.max_connections_per_ip, 1),
        header_timeout=r.number(data, "header_timeout", "limits.header_timeout", d.header_timeout, 0.1),
        body_timeout=r.number(data, "body_timeout", "limits.body_timeout", d.body_timeout, 0.1),
        send_timeout=r.number(data, "send_timeout", "limits.send_timeout", d.send_timeout, 0.1),
        keepalive_timeout=r.number(data, "keepalive_timeout", "limits.keepalive_timeout", d.keepalive_timeout, 0),
        requests_per_second=(None if _off(rate) else
                             r.number(data, "requests_per_second", "limits.requests_per_second", 0, 0.01)),
        requests_burst=(None if _off(burst) else
                        r.integer(data, "requests_burst", "limits.requests_burst", 0, 1)),
    )


def _throttle(r: Reader, value: object) -> Throttle:
    data = r.section(value, "throttle", {"enabled", "failures", "failures_per_ip", "window", "slow_after",
                                         "max_delay"})
    d = Throttle()
    return Throttle(
        enabled=r.boolean(data, "enabled", "throttle.enabled", d.enabled),
        failures=r.integer(data, "failures", "throttle.failures", d.failures, 1),
        failures_per_ip=r.integer(data, "failures_per_ip", "throttle.failures_per_ip", d.failures_per_ip, 1),
        window=r.number(data, "window", "throttle.window", d.window, 1),
        slow_after=r.integer(data, "slow_after", "throttle.slow_after", d.slow_after, 1),
        max_delay=r.number(data, "max_delay", "throttle.max_delay", d.max_delay, 0),
    )


def _public_url(r: Reader, value: object) -> str | None:
    if value is None:
        return None
    parts = None
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        port_ok = parts is not None and (parts.port is None or 0 < parts.port < 65536)
    except ValueError:
        port_ok = False
    if (parts is None or parts.scheme not in ("https", "http") or not parts.hostname or not port_ok
            or parts.path not in ("", "/") or parts.query or parts.fragment or parts.username
            or parts.password or not valid_host(parts.netloc)):
        raise r.fail("public_url", "the URL clients use, such as https://registry.example.org (no path)", value)
    return f"{parts.scheme}://{parts.netloc}"


def _proxy_protocol(r: Reader, value: object) -> ProxyProtocol:
    if _off(value):
        return ProxyProtocol()
    data = r.section(value, "proxy_protocol", {"trusted"})
    if "trusted" not in data:
        raise r.fail("proxy_protocol.trusted", "the networks of the balancers that send PROXY headers", None)
    return ProxyProtocol(trusted=r.networks(data["trusted"], "proxy_protocol.trusted"))


def _trusted_proxies(r: Reader, value: object) -> tuple[Network, ...]:
    if _off(value) or value == []:
        return ()
    return r.networks(value, "trusted_proxies")


def _cache(r: Reader, value: object) -> CacheConfig:
    if value is False or value == "off":
        return CacheConfig(max_bytes=0)
    data = r.section(value, "cache", {"max_bytes", "max_item", "ttl"})
    d = CacheConfig()
    return CacheConfig(
        max_bytes=r.integer(data, "max_bytes", "cache.max_bytes", d.max_bytes, 0),
        max_item=r.integer(data, "max_item", "cache.max_item", d.max_item, 0),
        ttl=r.number(data, "ttl", "cache.ttl", d.ttl, 0),
    )


def _workers(r: Reader, value: object) -> int:
    if value == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 256:
        raise r.fail("workers", "a whole number from 1 to 256, or auto (one per core)", value)
    return value


def _ui(r: Reader, value: object) -> UIConfig:
    if value is False or value == "off":
        return UIConfig(enabled=False)
    data = r.section(value, "ui", {"enabled", "path", "session_ttl"})
    d = UIConfig()
    path = r.string(data, "path", "ui.path", d.path)
    if not path.startswith("/") or not path.endswith("/") or path.startswith(("/v2", "/token")) or path == "/" \
            or any(c in path for c in "?#%\\ \"'<>"):
        raise r.fail("ui.path", "an absolute path ending in / outside /v2, such as /ui/", path)
    return UIConfig(
        enabled=r.boolean(data, "enabled", "ui.enabled", d.enabled),
        path=path,
        session_ttl=r.integer(data, "session_ttl", "ui.session_ttl", d.session_ttl, 60),
    )


def _admin(r: Reader, value: object) -> AdminConfig:
    if value is False or value == "off":
        return AdminConfig(listen=None)
    data = r.section(value, "admin", {"listen"})
    listen = data.get("listen", DEFAULT_ADMIN_LISTEN)
    if _off(listen):
        return AdminConfig(listen=None)
    r.host_port(listen, "admin.listen", "127.0.0.1:9102")
    return AdminConfig(listen=listen)


TOP_KEYS = {
    "listen", "tls", "backend", "public_url", "proxy_protocol", "trusted_proxies", "auth", "access",
    "timeouts", "log", "limits", "throttle", "admin", "maintenance_file", "pid_file", "ui", "cache", "workers",
}


def parse_config(data: object, path: Path) -> Config:
    """The whole file; relative paths resolve against the config's folder, never the cwd."""
    r = Reader(path)
    top = r.section(data, "", TOP_KEYS)
    host, port = r.host_port(top.get("listen", DEFAULT_LISTEN), "listen", "0.0.0.0:5043")
    maintenance = r.file(top, "maintenance_file", "maintenance_file", DEFAULT_MAINTENANCE_FILE, null_is_default=True)
    assert maintenance is not None  # never None: null is the default beside the config
    return Config(
        path=path,
        listen_host=host,
        listen_port=port,
        tls=_tls(r, top.get("tls")),
        backend=_backend(r, top.get("backend", DEFAULT_BACKEND)),
        public_url=_public_url(r, top.get("public_url")),
        proxy_protocol=_proxy_protocol(r, top.get("proxy_protocol")),
        trusted_proxies=_trusted_proxies(r, top.get("trusted_proxies")),
        auth=_auth(r, top.get("auth")),
        access=parse_access(r, top.get("access")),
        timeouts=_timeouts(r, top.get("timeouts")),
        log=_log(r, top.get("log")),
        limits=_limits(r, top.get("limits")),
        throttle=_throttle(r, top.get("throttle")),
        admin=_admin(r, top.get("admin")),
        ui=_ui(r, top.get("ui")),
        cache=_cache(r, top.get("cache")),
        workers=_workers(r, top.get("workers", 1)),
        maintenance_file=maintenance,
        pid_file=None if _off(top.get("pid_file", DEFAULT_PID_FILE))
        else r.file(top, "pid_file", "pid_file", DEFAULT_PID_FILE),
    )
