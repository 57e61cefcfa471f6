"""``proxy.yml``: the model (frozen dataclasses), the reader and its section parsers.

No aiohttp here: the CLI loads configs without importing the server.
"""

from proxy.config.hostport import connect_host, format_host_port, parse_host_port
from proxy.config.load import CONFIG_ENV, DEFAULT_CONFIG_PATH, find_config, load_config, load_or_exit
from proxy.config.model import (
    AdminConfig,
    AuthConfig,
    Config,
    Limits,
    LogConfig,
    Throttle,
    Timeouts,
    TLSConfig,
    TokenConfig,
)
from proxy.config.reader import ConfigError
from proxy.config.sections import parse_config

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "AdminConfig",
    "AuthConfig",
    "Config",
    "ConfigError",
    "Limits",
    "LogConfig",
    "TLSConfig",
    "Throttle",
    "Timeouts",
    "TokenConfig",
    "connect_host",
    "find_config",
    "format_host_port",
    "load_config",
    "load_or_exit",
    "parse_config",
    "parse_host_port",
]
