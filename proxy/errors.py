"""Errors the proxy makes itself, in the registry's JSON error format.

Messages are our own words and say what to do. That matters beyond style:
docker retries a 401/403 for about 50 s when the message equals the spec's
stock text, and fails at once with our text shown when it does not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler

API_VERSION_HEADER = "Docker-Distribution-Api-Version"
API_VERSION = "registry/2.0"


def error_body(code: str, message: str, detail: object = None) -> bytes:
    return json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]}).encode()


def json_error(
    status: int,
    code: str,
    message: str,
    *,
    detail: object = None,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    response = web.Response(
        status=status,
        body=error_body(code, message, detail),
        content_type="application/json",
        headers=dict(headers or {}),
    )
    response.headers[API_VERSION_HEADER] = API_VERSION
    return response


async def add_api_version(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: exactly one version header on every response (Apache sends two)."""
    response.headers[API_VERSION_HEADER] = API_VERSION


@web.middleware
async def json_http_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own refusals (no route for ``CONNECT host:port``, an empty path) in the JSON format."""
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            return json_error(404, "NOT_FOUND", "only the registry API under /v2/ is served here")
        return json_error(exc.status, "UNSUPPORTED", f"request refused: {exc.reason}")

