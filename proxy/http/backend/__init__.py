"""The proxy's own HTTP/1.1 client to the registry, for every request without a body (issue 15).

``wire`` (pure: heads and chunked framing) < ``connection`` (one asyncio
protocol) < ``client`` (the keep-alive pool). Uploads use aiohttp's client
(:mod:`proxy.http.upload`).
"""

from proxy.http.backend.client import KEEPALIVE, Answer, BackendClient, ConnectTimeout
from proxy.http.backend.connection import BackendBroken

__all__ = ["KEEPALIVE", "Answer", "BackendBroken", "BackendClient", "ConnectTimeout"]
