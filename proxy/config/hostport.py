"""``host:port``: the one parser and formatter, for ``listen``, ``admin.listen`` and the CLI.

IPv6 literals are written in brackets (``[::1]:5043``), as in URLs, so the
last ``:`` always separates the port.
"""

from __future__ import annotations

__all__ = ["connect_host", "format_host_port", "parse_host_port"]

WILDCARDS = frozenset({"", "0.0.0.0", "::"})


def parse_host_port(text: object) -> tuple[str, int]:
    """``"0.0.0.0:5043"`` -> ``("0.0.0.0", 5043)``; ``"[::1]:80"`` -> ``("::1", 80)``; ValueError otherwise."""
    if not isinstance(text, str) or ":" not in text:
        raise ValueError("expected host:port")
    host, _, port = text.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]  # an IPv6 literal, as in URLs
    if "[" in host or "]" in host:
        raise ValueError("brackets only around a whole IPv6 host, as in [::1]:5043")
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise ValueError("expected host:port with a port from 1 to 65535")
    return host, int(port)


def format_host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect_host(host: str) -> str:
    """Where a local client reaches a listener: a wildcard address is reached on loopback."""
    return "127.0.0.1" if host in WILDCARDS else host
