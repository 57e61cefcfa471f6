"""Walking the YAML tree of ``proxy.yml`` with one clear line per mistake.

Every wrong value stops start-up naming the file, the key, what was expected
and what was found. Unknown keys are errors too: a typo such as ``acess:``
must not silently fall back to the defaults.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from auth.access import Network
from proxy.config.hostport import parse_host_port

__all__ = ["ConfigError", "Reader"]


class ConfigError(Exception):
    """A config mistake; ``str()`` is the single line shown to the operator."""


class Reader:
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

    def boolean(self, data: Mapping[str, Any], key: str, dotted: str, default: bool) -> bool:
        value = data.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(dotted, "true or false", value)
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

    def integer(self, data: Mapping[str, Any], key: str, dotted: str, default: int, minimum: int) -> int:
        """A whole number: ``1.5`` failures is a mistake to name, not to round."""
        value = data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum or value > 10**9:
            raise self.fail(dotted, f"a whole number >= {minimum}", value)
        return value

    def file(self, data: Mapping[str, Any], key: str, dotted: str, default: str | None, *,
             null_is_default: bool = False) -> Path | None:
        """A path relative to the config's folder, never the cwd.

        An explicit ``null`` is None (no such file), or the default where the
        file cannot be switched off (``null_is_default``).
        """
        value = data.get(key, default)
        if value is None and null_is_default:
            value = default
        if value is None:
            return None
        if not isinstance(value, str) or not value or "\0" in value:
            raise self.fail(dotted, "a file path", value)
        return (self.base / value).resolve()

    def host_port(self, value: object, key: str, example: str) -> tuple[str, int]:
        try:
            return parse_host_port(value)
        except ValueError:
            raise self.fail(key, f"host:port such as {example}", value) from None

    def networks(self, value: object, dotted: str) -> tuple[Network, ...]:
        """A list of CIDRs (or single addresses); one string is a list of one."""
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise self.fail(dotted, "a list of networks such as [10.0.0.0/8, 192.168.0.0/16]", value)
        return tuple(self._network(item, dotted) for item in items)

    def _network(self, item: object, dotted: str) -> Network:
        """One network, strictly: ``10.1.2.3/8`` is a typo for /32 or 10.0.0.0/8, not something to guess."""
        expected = "networks such as 10.0.0.0/8 or 2001:db8::/32"
        if not isinstance(item, str):
            raise self.fail(dotted, expected, item)
        try:
            net = ipaddress.ip_network(item)
        except ValueError:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise self.fail(dotted, expected, item) from None
            raise self.fail(dotted, "a network address with no host bits set (such as 10.0.0.0/8, "
                            "or 10.1.2.3/32 for one address)", item) from None
        if isinstance(net, ipaddress.IPv6Network) and net.network_address.ipv4_mapped is not None:
            # client addresses are judged as IPv4 when IPv4-mapped, so this could never match
            raise self.fail(dotted, "IPv4 networks written as IPv4 (not ::ffff:...)", item)
        return net
