"""JSON errors for requests aiohttp refuses before any handler runs.

aiohttp's C parser rejects an unknown or lowercase method (``FOO``,
``delete``) and malformed framing with a text/plain 400 that carries no
API-version header. Those never reach the backend, which is what matters
for security, but clients and operators should still get the registry's
error format, and an unknown method is a 405. aiohttp has no hook for this,
so the server's handler class is swapped for a subclass that only
overrides ``handle_error`` (``__slots__ = ()`` keeps the layout identical).
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from proxy.errors import API_VERSION, API_VERSION_HEADER, error_body


class JsonErrorHandler(RequestHandler):
    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)  # logs; raises if a response already started
        if isinstance(exc, BadHttpMethod):
            status, code, text = 405, "UNSUPPORTED", "unknown method; the registry API uses GET, HEAD, " \
                "POST, PUT, PATCH and DELETE (upper case)"
        elif isinstance(exc, HttpProcessingError) and status < 500:
            code, text = "UNSUPPORTED", f"malformed request: {exc.message}"
        else:
            code, text = "UNKNOWN", "internal error in the proxy"
        response = web.Response(status=status, body=error_body(code, text), content_type="application/json")
        response.headers[API_VERSION_HEADER] = API_VERSION
        if status == 405:
            response.headers["Allow"] = "GET, HEAD, POST, PUT, PATCH, DELETE"
        response.force_close()
        return response


class JsonErrorServer(web.Server):
    __slots__ = ()

    def __call__(self) -> RequestHandler:
        handler = super().__call__()
        handler.__class__ = JsonErrorHandler
        return handler


def install(runner: web.BaseRunner) -> None:
    """Call after ``runner.setup()`` and before any site starts."""
    server = runner.server
    if server is None:
        raise RuntimeError("runner is not set up")
    server.__class__ = JsonErrorServer
