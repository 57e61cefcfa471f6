"""The ``Host`` a client sent, judged before it is used to build any URL.

Realm URLs, upload ``Location`` headers and error texts are built from the
public origin. When ``public_url`` is not configured that origin is the
client's ``Host``, so a value that is not a plain ``hostname[:port]`` (an
RFC 3986 reg-name, an IPv4 address or a bracketed IPv6 literal) is refused:
quotes, commas, slashes or spaces in it would otherwise inject parameters
into a challenge or point a ``Location`` at another site.
"""

from __future__ import annotations

import ipaddress
import re

from auth.decision import Origin
from auth.errors import ProxyError

__all__ = ["public_origin", "valid_host"]

_HOST = re.compile(
    r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9])?|\[(?P<v6>[0-9A-Fa-f:.]{2,45})\])"
    r"(?::(?P<port>[0-9]{1,5}))?"
)


def valid_host(host: str) -> bool:
    """True for ``hostname``, ``hostname:port``, ``1.2.3.4:port``, ``[::1]:port``; nothing else."""
    m = _HOST.fullmatch(host)
    if m is None:
        return False
    if m["port"] is not None and not 0 < int(m["port"]) < 65536:
        return False
    if m["v6"] is not None:
        try:
            ipaddress.IPv6Address(m["v6"])
        except ValueError:
            return False
    return ".." not in host


def public_origin(scheme: str, host_headers: list[str], client_ip: str, public_url: str | None) -> Origin:
    """The origin every URL is built from: ``public_url`` when configured, else the checked ``Host``."""
    if public_url is not None:
        configured_scheme, _, host = public_url.partition("://")
        return Origin(configured_scheme, host, client_ip)
    if len(host_headers) != 1 or not valid_host(host_headers[0]):
        raise ProxyError(400, "UNSUPPORTED", "the Host header must be one hostname[:port]")
    return Origin(scheme, host_headers[0], client_ip)
