"""What ``proxy.yml`` means, as frozen dataclasses: every default is written here, once.

The parsers (``sections``) take their defaults from these classes, so the
default of a key cannot differ between the code, ``check-config`` and a
config that leaves the key out.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from auth.access import Access, Network
from proxy.config.hostport import format_host_port

__all__ = [
    "DEFAULT_ADMIN_LISTEN",
    "DEFAULT_BACKEND",
    "DEFAULT_LISTEN",
    "DEFAULT_MAINTENANCE_FILE",
    "DEFAULT_PID_FILE",
    "AdminConfig",
    "AuthConfig",
    "CacheConfig",
    "Config",
    "Limits",
    "LogConfig",
    "ProxyProtocol",
    "TLSConfig",
    "Throttle",
    "Timeouts",
    "TokenConfig",
    "UIConfig",
]

DEFAULT_LISTEN = "0.0.0.0:5043"
DEFAULT_BACKEND = "http://127.0.0.1:5000"
DEFAULT_ADMIN_LISTEN = "127.0.0.1:9102"
DEFAULT_MAINTENANCE_FILE = "maintenance"  # beside the config file
DEFAULT_PID_FILE = "registry-auth-proxy.pid"  # beside the config file; the packaged install uses /run


@dataclass(frozen=True)
class TLSConfig:
    cert: Path
    key: Path


@dataclass(frozen=True)
class TokenConfig:
    secret_file: Path | None = None  # None: a random key per process (replicas need a shared one)
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
    robots: Path | None = Path("robots.yml")  # robot accounts (``robot add``); a missing file means none
    challenge: str = "bearer"  # bearer | basic
    cache_ttl: float = 60.0
    token: TokenConfig = field(default_factory=TokenConfig)


@dataclass(frozen=True)
class Timeouts:
    connect: float = 10.0  # backend connect (then 502)
    read: float = 300.0  # backend read idle (then 504); there is no overall transfer timeout
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
    max_connections_per_ip: int = 256  # per client address: a NAT'd CI fleet fits, one scraper cannot take all
    header_timeout: float = 30.0  # seconds to send a complete request head
    body_timeout: float = 60.0  # seconds a request body may stall between reads
    send_timeout: float = 60.0  # seconds a client may read nothing of a response (nginx's send_timeout)
    keepalive_timeout: float = 75.0  # idle keep-alive connections are closed after this
    requests_per_second: float | None = None  # per client address; None: no request rate limit
    requests_burst: int | None = None  # bucket size; None: twice the rate (at least 10)


@dataclass(frozen=True)
class Throttle:
    """Failed-login throttling (per replica): hard limits per (address, user) and per address.

    A user's failures from all addresses only slow that user's checks down
    (up to ``max_delay``); they never refuse a correct password from an
    address with no failures of its own, so nobody can lock a user out.
    """

    enabled: bool = True
    failures: int = 10  # failed (or in-flight) checks per (address, user) per window, then 429
    failures_per_ip: int = 100  # the same per address, whatever the user names
    window: float = 300.0  # seconds a failure counts
    slow_after: int = 20  # failures for one user across all addresses before checks are slowed ...
    max_delay: float = 2.0  # ... by up to this many seconds


@dataclass(frozen=True)
class ProxyProtocol:
    """PROXY protocol v1/v2 on the public listener, from these sources only (empty: off)."""

    trusted: tuple[Network, ...] = ()


@dataclass(frozen=True)
class CacheConfig:
    """Manifests and small blobs by digest, served from memory after the same authorization (0: off)."""

    max_bytes: int = 64 * 1024 * 1024
    max_item: int = 4 * 1024 * 1024
    ttl: float = 300.0  # seconds an entry lives: changes made behind the proxy's back age out


@dataclass(frozen=True)
class UIConfig:
    """The web catalog on the registry's own origin (``proxy.ui``)."""

    enabled: bool = True
    path: str = "/ui/"  # where it is served; a browser asking for / is redirected here
    session_ttl: int = 3600  # seconds a sign-in lasts (a signed cookie; no server-side sessions)


@dataclass(frozen=True)
class AdminConfig:
    """The admin listener (metrics, health): never the public port."""

    listen: str | None = DEFAULT_ADMIN_LISTEN  # None: off


@dataclass(frozen=True)
class Config:
    path: Path
    listen_host: str = "0.0.0.0"
    listen_port: int = 5043
    tls: TLSConfig | None = None
    backend: str = DEFAULT_BACKEND
    public_url: str | None = None  # e.g. https://registry.example.org: every URL the proxy builds uses it
    proxy_protocol: ProxyProtocol = field(default_factory=ProxyProtocol)
    trusted_proxies: tuple[Network, ...] = ()  # L7 fronts whose X-Forwarded-For is believed
    auth: AuthConfig = field(default_factory=AuthConfig)
    access: Access = field(default_factory=Access)
    timeouts: Timeouts = field(default_factory=Timeouts)
    log: LogConfig = field(default_factory=LogConfig)
    limits: Limits = field(default_factory=Limits)
    throttle: Throttle = field(default_factory=Throttle)
    admin: AdminConfig = field(default_factory=AdminConfig)
    ui: UIConfig = field(default_factory=UIConfig)
    cache: CacheConfig = field(default_factory=CacheConfig)
    workers: int = 1  # worker processes on the one listening socket; `auto` in the file = the cores
    maintenance_file: Path = Path(DEFAULT_MAINTENANCE_FILE)  # the parser always makes it absolute
    pid_file: Path | None = Path(DEFAULT_PID_FILE)  # None: none written (`reload` then needs systemctl)

    @property
    def listen(self) -> str:
        return format_host_port(self.listen_host, self.listen_port)
