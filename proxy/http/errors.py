"""The one renderer: every :class:`~auth.errors.ProxyError` becomes the registry's JSON error.

Handlers, the token endpoint, aiohttp's own refusals (``json_http_errors``),
parser errors and the connection-level replies written before any request
exists (``proxy.server.aiohttp_seams``) all come through here, so every
answer the proxy makes has the same body shape and the same headers.
"""

from __future__ import annotations

import json
from http import HTTPStatus

from aiohttp import web
from aiohttp.typedefs import Handler

from auth.errors import ProxyError

__all__ = ["API_VERSION", "API_VERSION_HEADER", "add_api_version", "json_http_errors", "render", "render_bytes"]

API_VERSION_HEADER = "Docker-Distribution-Api-Version"
API_VERSION = "registry/2.0"
JSON = "application/json"
SERVER = "registry-auth-proxy"  # no Python or aiohttp version: nothing for a scanner to match CVEs against


def _body(err: ProxyError) -> bytes:
    return json.dumps({"errors": [{"code": err.code, "message": err.message, "detail": None}]}).encode()


NO_STORE = frozenset({401, 403, 429})  # answers about one caller's credentials: never cached for another


def _headers(err: ProxyError) -> dict[str, str]:
    if err.status not in NO_STORE:
        return dict(err.headers)
    headers = {k: v for k, v in err.headers.items() if k.lower() != "cache-control"}
    headers["Cache-Control"] = "no-store"
    return headers


def render(err: ProxyError) -> web.Response:
    """The error as an aiohttp response (for anything that has a request)."""
    response = web.Response(status=err.status, body=_body(err), content_type=JSON, headers=_headers(err))
    response.headers[API_VERSION_HEADER] = API_VERSION
    return response


def render_bytes(err: ProxyError) -> bytes:
    """The same error as a complete HTTP/1.1 response with ``Connection: close``.

    For answers written straight to a transport, where no request object
    exists yet: a connection over the cap, a request head that never ended.
    """
    body = _body(err)
    try:
        reason = HTTPStatus(err.status).phrase
    except ValueError:
        reason = "Error"
    extra = "".join(f"{name}: {value}\r\n" for name, value in _headers(err).items())
    head = (
        f"HTTP/1.1 {err.status} {reason}\r\nServer: {SERVER}\r\nContent-Type: {JSON}\r\n"
        f"{API_VERSION_HEADER}: {API_VERSION}\r\n"
        f"{extra}Connection: close\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


async def add_api_version(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: exactly one version header on every response (Apache sends two).

    The ``Server`` header is set here too, or aiohttp would name itself and Python with their versions;
    and ``Connection: close`` on an answer written during the SIGTERM drain
    (``proxy.server.aiohttp_seams``), so the client does not send its next
    request into a connection that is about to close.
    """
    response.headers[API_VERSION_HEADER] = API_VERSION
    response.headers["Server"] = SERVER
    if getattr(request.protocol, "draining", False):  # stopping: the connection closes after this answer, say so
        response.headers["Connection"] = "close"


@web.middleware
async def json_http_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own refusals (no route for ``CONNECT host:port``, an empty path) in the JSON format."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            return render(ProxyError(404, "NOT_FOUND", "only the registry API under /v2/ is served here"))
        return render(ProxyError(exc.status, "UNSUPPORTED", f"request refused: {exc.reason}"))
