"""What ``proxy.yml`` means, as frozen dataclasses: every default is written here, once.

The parsers (``sections``) take their defaults from these classes, so the
default of a key cannot differ between the code, ``check-config`` and a
config that leaves the key out.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path

from auth.access import Access
from proxy.config.hostport import format_host_port

__all__ = [
    "DEFAULT_ADMIN_LISTEN",
    "DEFAULT_BACKEND",
    "DEFAULT_LISTEN",
    "DEFAULT_MAINTENANCE_FILE",
    "AdminConfig",
    "AuthConfig",
    "Config",
    "Limits",
    "LogConfig",
    "TLSConfig",
    "Throttle",
    "Timeouts",
    "TokenConfig",
]

DEFAULT_LISTEN = "0.0.0.0:5043"
DEFAULT_BACKEND = "http://127.0.0.1:5000"
DEFAULT_ADMIN_LISTEN = "127.0.0.1:9102"
DEFAULT_MAINTENANCE_FILE = "maintenance"  # beside the config file


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

    listen: str | None = DEFAULT_ADMIN_LISTEN  # None: off


@dataclass(frozen=True)
class Config:
    path: Path
    listen_host: str = "0.0.0.0"
    listen_port: int = 5043
    tls: TLSConfig | None = None
    backend: str = DEFAULT_BACKEND
    auth: AuthConfig = field(default_factory=AuthConfig)
    access: Access = field(default_factory=Access)
    timeouts: Timeouts = field(default_factory=Timeouts)
    log: LogConfig = field(default_factory=LogConfig)
    limits: Limits = field(default_factory=Limits)
    throttle: Throttle = field(default_factory=Throttle)
    admin: AdminConfig = field(default_factory=AdminConfig)
    maintenance_file: Path = Path(DEFAULT_MAINTENANCE_FILE)  # the parser always makes it absolute

    @property
    def listen(self) -> str:
        return format_host_port(self.listen_host, self.listen_port)
