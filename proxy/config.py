"""Loading ``proxy.yml`` into frozen dataclasses, with one clear line per mistake.

Every key has a default; every wrong value stops start-up naming the file, the
key, what was expected and what was found. Unknown keys are errors too: a typo
such as ``acess:`` must not silently fall back to the defaults.
"""

from __future__ import annotations

import math
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from auth.policy import Access
from proxy.config_access import parse_access


class ConfigError(Exception):
    """A config mistake; ``str()`` is the single line shown to the operator."""


@dataclass(frozen=True)
class TLSConfig:
    cert: Path
    key: Path


@dataclass(frozen=True)
class TokenConfig:
    secret_file: Path | None = None
    ttl: int = 300
    service: str = field(default_factory=socket.gethostname)
    path: str = "/token"
    realm: str | None = None  # default: built from the request's scheme and Host
    issuer: str = "registry-auth-proxy"


@dataclass(frozen=True)
class AuthConfig:
    realm: str = "basic-realm"
    htpasswd: Path = Path("users.htpasswd")
    groups: Path | None = Path("users.groups")
    challenge: str = "bearer"
    cache_ttl: float = 60.0
    token: TokenConfig = field(default_factory=TokenConfig)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0  # backend connect
    read: float = 300.0  # backend read idle; there is no overall transfer timeout
    grace: float = 30.0  # SIGTERM: time given to transfers in flight


@dataclass(frozen=True)
class LogConfig:
    access: bool = True
    format: str = "combined"  # combined (Apache's) | json
    file: Path | None = None  # None: stdout; a file is reopened on SIGHUP


@dataclass(frozen=True)
class Limits:
    """Bounds that keep slow or abusive clients from exhausting the proxy."""

    max_connections: int = 1024  # concurrent client connections; more are refused at accept
    header_timeout: float = 30.0  # seconds to send a complete request head
    body_timeout: float = 60.0  # seconds a request body may stall between reads
    keepalive_timeout: float = 75.0  # idle keep-alive connections are closed after this


@dataclass(frozen=True)
class Throttle:
    """Failed-login throttling, per client IP and per user name (per replica)."""

    enabled: bool = True
    failures: int = 10  # failed logins allowed per window ...
    window: float = 300.0  # ... of this many seconds, then 429 until the window passes


@dataclass(frozen=True)
class AdminConfig:
    """The admin listener (metrics, health): never the public port."""

    listen: str | None = "127.0.0.1:9102"  # None: off


@dataclass(frozen=True)
class Config:
    path: Path
    listen_host: str = "0.0.0.0"
    listen_port: int = 5043
    tls: TLSConfig | None = None
    backend: str = "http://127.0.0.1:5000"
    auth: AuthConfig = field(default_factory=AuthConfig)
    access: Access = field(default_factory=Access)
    timeouts: Timeouts = field(default_factory=Timeouts)
    log: LogConfig = field(default_factory=LogConfig)
    limits: Limits = field(default_factory=Limits)
    throttle: Throttle = field(default_factory=Throttle)
    admin: AdminConfig = field(default_factory=AdminConfig)
    maintenance_file: Path = Path("maintenance")

    @property
    def listen(self) -> str:
        host = f"[{self.listen_host}]" if ":" in self.listen_host else self.listen_host
        return f"{host}:{self.listen_port}"


class _Reader:
    """Walks the YAML tree, remembering the dotted key for error messages."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.base = path.parent

    def fail(self, key: str, expected: str, found: object) -> ConfigError:
        return ConfigError(f"{self.path}: {key}: expected {expected}, found {found!r}")

    def section(self, data: object, key: str, allowed: set[str]) -> Mapping[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, Mapping):
            raise self.fail(key, "a mapping", data)
        for name in data:
            if name not in allowed:
                where = f"{key}.{name}" if key else str(name)
                raise self.fail(where, "one of " + ", ".join(sorted(allowed)), "an unknown key")
        return data

    def string(self, data: Mapping[str, Any], key: str, dotted: str, default: str) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(dotted, "a non-empty string", value)
        return value

    def number(self, data: Mapping[str, Any], key: str, dotted: str, default: float, minimum: float) -> float:
        value = data.get(key, default)
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value < minimum
            or value > 10**9
        ):
            raise self.fail(dotted, f"a number >= {minimum:g}", value)
        return float(value)

    def file(self, data: Mapping[str, Any], key: str, dotted: str, default: str | None) -> Path | None:
        value = data.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str) or not value or "\0" in value:
            raise self.fail(dotted, "a file path", value)
        return (self.base / value).resolve()


def _listen(r: _Reader, value: object, key: str = "listen") -> tuple[str, int]:
    if not isinstance(value, str) or ":" not in value:
        raise r.fail(key, "host:port such as 0.0.0.0:5043", value)
    host, _, port = value.rpartition(":")
    host = host.strip("[]")
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise r.fail(key, "host:port such as 0.0.0.0:5043", value)
    return host, int(port)


def _backend(r: _Reader, value: object) -> str:
    if not isinstance(value, str):
        raise r.fail("backend", "a URL such as http://127.0.0.1:5000", value)
    parts = urlsplit(value)
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


def _tls(r: _Reader, value: object) -> TLSConfig | None:
    if value is None or value is False or value == "off":
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


def _token(r: _Reader, value: object) -> TokenConfig:
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
        ttl=int(r.number(data, "ttl", "auth.token.ttl", default.ttl, 10)),
        service=r.string(data, "service", "auth.token.service", default.service),
        path=path,
        realm=realm,
        issuer=r.string(data, "issuer", "auth.token.issuer", default.issuer),
    )


def _auth(r: _Reader, value: object) -> AuthConfig:
    data = r.section(value, "auth", {"realm", "htpasswd", "groups", "challenge", "cache_ttl", "token"})
    challenge = data.get("challenge", "bearer")
    if challenge not in ("bearer", "basic"):
        raise r.fail("auth.challenge", "bearer or basic", challenge)
    realm = r.string(data, "realm", "auth.realm", "basic-realm")
    if '"' in realm or "\\" in realm:
        raise r.fail("auth.realm", "a realm without quotes or backslashes", realm)
    htpasswd = r.file(data, "htpasswd", "auth.htpasswd", "users.htpasswd")
    if htpasswd is None:
        raise r.fail("auth.htpasswd", "a file path", None)
    return AuthConfig(
        realm=realm,
        htpasswd=htpasswd,
        groups=r.file(data, "groups", "auth.groups", "users.groups"),
        challenge=challenge,
        cache_ttl=r.number(data, "cache_ttl", "auth.cache_ttl", 60.0, 0),
        token=_token(r, data.get("token")),
    )


def _timeouts(r: _Reader, value: object) -> Timeouts:
    data = r.section(value, "timeouts", {"connect", "read", "grace"})
    return Timeouts(
        connect=r.number(data, "connect", "timeouts.connect", 10.0, 0.1),
        read=r.number(data, "read", "timeouts.read", 300.0, 0.1),
        grace=r.number(data, "grace", "timeouts.grace", 30.0, 0),
    )


def _log(r: _Reader, value: object) -> LogConfig:
    data = r.section(value, "log", {"access", "format", "file"})
    access = data.get("access", True)
    if not isinstance(access, bool):
        raise r.fail("log.access", "true or false", access)
    fmt = data.get("format", "combined")
    if fmt not in ("combined", "json"):
        raise r.fail("log.format", "combined or json", fmt)
    return LogConfig(access=access, format=fmt, file=r.file(data, "file", "log.file", None))


def _limits(r: _Reader, value: object) -> Limits:
    data = r.section(value, "limits", {"max_connections", "header_timeout", "body_timeout", "keepalive_timeout"})
    return Limits(
        max_connections=int(r.number(data, "max_connections", "limits.max_connections", 1024, 1)),
        header_timeout=r.number(data, "header_timeout", "limits.header_timeout", 30.0, 0.1),
        body_timeout=r.number(data, "body_timeout", "limits.body_timeout", 60.0, 0.1),
        keepalive_timeout=r.number(data, "keepalive_timeout", "limits.keepalive_timeout", 75.0, 0),
    )


def _throttle(r: _Reader, value: object) -> Throttle:
    data = r.section(value, "throttle", {"enabled", "failures", "window"})
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise r.fail("throttle.enabled", "true or false", enabled)
    return Throttle(
        enabled=enabled,
        failures=int(r.number(data, "failures", "throttle.failures", 10, 1)),
        window=r.number(data, "window", "throttle.window", 300.0, 1),
    )


def _admin(r: _Reader, value: object) -> AdminConfig:
    if value is False or value == "off":
        return AdminConfig(listen=None)
    data = r.section(value, "admin", {"listen"})
    listen = data.get("listen", "127.0.0.1:9102")
    if listen in (False, "off", None):
        return AdminConfig(listen=None)
    _listen(r, listen, "admin.listen")
    return AdminConfig(listen=listen)


TOP_KEYS = {
    "listen", "tls", "backend", "auth", "access", "timeouts", "log", "limits", "throttle", "admin",
    "maintenance_file",
}


def parse_config(data: object, path: Path) -> Config:
    r = _Reader(path)
    top = r.section(data, "", TOP_KEYS)
    host, port = _listen(r, top.get("listen", "0.0.0.0:5043"))
    return Config(
        path=path,
        listen_host=host,
        listen_port=port,
        tls=_tls(r, top.get("tls")),
        backend=_backend(r, top.get("backend", "http://127.0.0.1:5000")),
        auth=_auth(r, top.get("auth")),
        access=parse_access(r, top.get("access")),
        timeouts=_timeouts(r, top.get("timeouts")),
        log=_log(r, top.get("log")),
        limits=_limits(r, top.get("limits")),
        throttle=_throttle(r, top.get("throttle")),
        admin=_admin(r, top.get("admin")),
        maintenance_file=r.file(top, "maintenance_file", "maintenance_file", "maintenance") or Path("maintenance"),
    )


def load_config(path: str | Path) -> Config:
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    return parse_config(data if data is not None else {}, path)


def load_or_exit(path: str | Path) -> Config:
    """For commands: the one-line error on stderr and exit status 2, never a traceback."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"registry-auth-proxy: config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
