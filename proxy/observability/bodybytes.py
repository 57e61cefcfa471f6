"""Response BODY bytes, as Apache's ``%b`` counts them: no status line, no headers, no chunk framing.

aiohttp's ``response.body_length`` is everything its writer sent, headers
included, so an empty ``201`` counted ~400 bytes and a HEAD the size of its
headers. The body is counted where it is written instead: an
``on_response_prepare`` hook (:func:`count_body_bytes`) gives each request's
writer a counter through ``on_body_write``, aiohttp's public per-write
notification (``aiohttp.abc.AbstractStreamWriter``), which reports each body
chunk before framing. The access log and the ``sent_bytes`` metric both read
:func:`body_bytes`.

Answers written without the app (the parser refusals of
``proxy.server.aiohttp_seams``) are complete in-memory responses: their body
is their length. HEAD answers and statuses without a body (1xx, 204, 304)
are 0 whatever ``Content-Length`` says.
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["BODY_SENT", "BodyCount", "body_bytes", "count_body_bytes"]

NO_BODY = frozenset({204, 304})


class BodyCount:
    """Body bytes handed to the transport for one response (a client that left early got fewer)."""

    __slots__ = ("sent",)

    def __init__(self) -> None:
        self.sent = 0

    def add(self, size: int, _output_size: int) -> None:
        self.sent += size


BODY_SENT: web.RequestKey[BodyCount] = web.RequestKey("body_sent")


async def _attach(request: web.Request, response: web.StreamResponse) -> None:
    count = BodyCount()
    request[BODY_SENT] = count
    request.writer.on_body_write = count.add


def count_body_bytes(app: web.Application) -> None:
    """Count the body of every response ``app`` prepares; call before the app starts (signals freeze)."""
    app.on_response_prepare.append(_attach)


def body_bytes(request: web.BaseRequest, response: web.StreamResponse) -> int | None:
    """Body bytes sent for this request; None when nobody counted a streamed body (never in ``serve``)."""
    if request.method == "HEAD" or response.status < 200 or response.status in NO_BODY:
        return 0
    count = request.get(BODY_SENT)
    if count is not None:
        return count.sent
    if isinstance(response, web.Response) and response.prepared:
        body = response.body
        if isinstance(body, (bytes, bytearray)):
            return len(body)
        if body is None:
            return 0
    return None
