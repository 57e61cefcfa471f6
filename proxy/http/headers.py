"""Which headers cross the proxy, in each direction (pure, no I/O).

Repeated headers keep every value in order: docker sends one ``Accept`` line
per manifest type, and collapsing them made the registry answer an old
schema1 manifest with another digest. Client-sent forwarding headers are
dropped, because the registry builds upload ``Location`` URLs from them.
"""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

__all__ = ["HOP_BY_HOP", "NEVER_UPSTREAM", "downstream_headers", "upstream_headers"]

HOP_BY_HOP = frozenset(
    h.lower()
    for h in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
    )
)
NEVER_UPSTREAM = frozenset(
    {"authorization", "forwarded", "x-real-ip", "host", "content-length", "expect", "cookie",
     # method overrides: the gate judged the request line's method; no backend may act on another one
     "x-http-method-override", "x-http-method", "x-method-override"}
)


# Precomputed once: the request path tests every header name against these (issue 15: no per-request sets).
_UPSTREAM_DROP = HOP_BY_HOP | NEVER_UPSTREAM
_DOWNSTREAM_DROP = HOP_BY_HOP | {"docker-distribution-api-version"}


def _connection_tokens(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> set[str]:
    return {t.strip().lower() for v in headers.getall("Connection", ()) for t in v.split(",") if t.strip()}


def _drop(base: frozenset[str], headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> frozenset[str]:
    """``base`` plus the headers a ``Connection`` header names; ``base`` itself when there is none (HTTP/1.1)."""
    return base | _connection_tokens(headers) if "Connection" in headers else base


def upstream_headers(
    incoming: CIMultiDictProxy[str] | CIMultiDict[str],
    *,
    host: str,
    proto: str,
    client_ip: str,
    content_length: int | None,
) -> CIMultiDict[str]:
    """Headers for the backend: the client's, minus credentials and hop-by-hop, plus ours."""
    drop = _drop(_UPSTREAM_DROP, incoming)
    out: CIMultiDict[str] = CIMultiDict(Host=host)
    for name, value in incoming.items():
        low = name.lower()
        if low in drop or low.startswith(("x-forwarded-", "proxy-")):
            continue
        out.add(name, value)
    if content_length is not None:
        out["Content-Length"] = str(content_length)
    out["X-Forwarded-Proto"] = proto
    out["X-Forwarded-Host"] = host
    out["X-Forwarded-For"] = client_ip
    return out


def downstream_headers(
    incoming: CIMultiDictProxy[str] | CIMultiDict[str],
    *,
    backend_origin: str,
    public_origin: str,
) -> CIMultiDict[str]:
    """Headers for the client: the backend's, minus hop-by-hop, with Location made public."""
    drop = _drop(_DOWNSTREAM_DROP, incoming)
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in incoming.items():
        low = name.lower()
        if low in drop:
            continue
        if low == "location" and value.startswith(backend_origin + "/"):
            value = public_origin + value[len(backend_origin):]
        out.add(name, value)
    return out
