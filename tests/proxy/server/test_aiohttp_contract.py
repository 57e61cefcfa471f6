"""The contract with aiohttp's internals: every private name and low-level signature we rely on.

``proxy/server/aiohttp_seams.py`` is the only module that extends aiohttp
below its application API. If an aiohttp release changes what it relies on,
this file fails first and says which assumption broke. CI runs it against
the lowest and the highest aiohttp the pin in pyproject.toml admits.
"""

from __future__ import annotations

import asyncio
import inspect

import aiohttp
import pytest
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong

from proxy.server.aiohttp_seams import OUR_ATTRIBUTES, PRIVATE, GuardedHandler, GuardedSite

HANDLER_OPTIONS = ("keepalive_timeout", "access_log_class", "access_log", "read_bufsize", "auto_decompress")


def test_the_private_names_are_the_ones_listed() -> None:
    assert set(PRIVATE) == {"aiohttp.web.RequestHandler._request_count",
                            "aiohttp.web.RequestHandler._parser"}, "update this contract test too"


def test_public_classes_we_subclass_are_exported() -> None:
    assert web.RequestHandler.__module__ == "aiohttp.web_protocol"
    assert "RequestHandler" in web.__all__ and "BaseSite" in web.__all__ and "Server" in web.__all__
    assert issubclass(GuardedHandler, web.RequestHandler)
    assert issubclass(GuardedSite, web.BaseSite)


def test_request_handler_constructor_takes_our_options() -> None:
    params = inspect.signature(web.RequestHandler.__init__).parameters
    assert list(params)[1] == "manager"
    for name in ("loop", *HANDLER_OPTIONS):
        assert name in params, f"RequestHandler() no longer takes {name}="
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY


def test_overridden_methods_keep_their_signatures() -> None:
    assert list(inspect.signature(web.RequestHandler.handle_error).parameters) == [
        "self", "request", "status", "exc", "message"]
    assert list(inspect.signature(web.RequestHandler.log_access).parameters) == [
        "self", "request", "response", "time"]
    for name in ("connection_made", "connection_lost", "data_received", "force_close"):
        assert callable(getattr(web.RequestHandler, name))
    assert inspect.iscoroutinefunction(web.BaseSite.start) and inspect.iscoroutinefunction(web.BaseSite.stop)


def test_our_attributes_do_not_collide_with_aiohttp_slots() -> None:
    slots: set[str] = set()
    for klass in web.RequestHandler.__mro__:
        slots.update(getattr(klass, "__slots__", ()))
    assert not slots & set(OUR_ATTRIBUTES)
    assert "_request_count" in slots and "_parser" in slots
    for ours in ("drain", "draining"):
        assert not hasattr(web.RequestHandler, ours), f"our public {ours} would shadow aiohttp's"


def test_parser_exceptions_we_translate() -> None:
    assert issubclass(BadHttpMethod, HttpProcessingError)
    assert issubclass(LineTooLong, HttpProcessingError)
    assert "message" in inspect.signature(HttpProcessingError.__init__).parameters
    assert isinstance(inspect.getattr_static(web.BaseRequest, "writer"), property)


class _Transport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = b""
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written += bytes(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("192.0.2.7", 40000) if name == "peername" else default


async def test_request_count_counts_parsed_heads_one_per_request() -> None:
    """The one private attribute: +1 per complete head, none for a partial one, +1 for a parser error."""
    async def ok(request: web.BaseRequest) -> web.Response:
        return web.Response(text="ok")

    server = web.Server(ok)
    handler = web.RequestHandler(server, loop=asyncio.get_running_loop())
    transport = _Transport()
    handler.connection_made(transport)
    assert handler._request_count == 0
    handler.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert handler._request_count == 0
    handler.data_received(b"\r\n")
    assert handler._request_count == 1
    handler.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n")
    assert handler._request_count == 3
    await asyncio.sleep(0.05)
    assert transport.written.count(b"HTTP/1.1 200") == 3
    handler.connection_lost(None)


async def test_request_count_counts_a_parser_error() -> None:
    server = web.Server(lambda request: web.Response())  # type: ignore[arg-type,return-value]
    handler = web.RequestHandler(server, loop=asyncio.get_running_loop())
    handler.connection_made(_Transport())
    handler.data_received(b"delete / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert handler._request_count == 1
    handler.connection_lost(None)


def test_version_is_within_the_pin() -> None:
    major, minor, *_ = (int(p) for p in aiohttp.__version__.split(".")[:3])
    assert (major, minor) == (3, 14), f"aiohttp {aiohttp.__version__}: the pin is >=3.14,<3.15"


@pytest.mark.parametrize("name", ["connections"])
def test_server_public_attributes(name: str) -> None:
    assert isinstance(inspect.getattr_static(web.Server, name), property)


async def test_request_remote_is_the_transports_peername() -> None:
    """PROXY protocol support rests on this public path: the transport's ``peername`` is ``request.remote``
    (``ClientTransport`` answers it with the header's client), and the parser error path gets it too."""
    seen: list[str | None] = []

    async def remember(request: web.BaseRequest) -> web.Response:
        seen.append(request.remote)
        return web.Response()

    handler = web.RequestHandler(web.Server(remember), loop=asyncio.get_running_loop())
    transport = _Transport()
    handler.connection_made(transport)
    handler.data_received(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.05)
    assert seen == ["192.0.2.7"]
    handler.connection_lost(None)


# -- the drain (GuardedHandler.drain, GuardedSite.stop) ----------------------------------------------------

async def test_after_close_the_body_is_dropped_but_the_parser_still_takes_it() -> None:
    """Why the drain feeds ``_parser`` itself, and that doing so works.

    ``close()`` (what ``Server.pre_shutdown`` calls on every connection) makes
    ``data_received`` drop all bytes, a body in flight included. If this
    first assertion fails, aiohttp reads bodies through its shutdown now and
    ``GuardedHandler._read_body_in_flight`` may go.
    """
    bodies: list[bytes] = []

    async def read(request: web.BaseRequest) -> web.Response:
        bodies.append(await request.read())
        return web.Response(text="done")

    handler = web.RequestHandler(web.Server(read), loop=asyncio.get_running_loop())
    transport = _Transport()
    handler.connection_made(transport)
    handler.data_received(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nab")
    await asyncio.sleep(0.05)
    handler.close()
    handler.data_received(b"cd")
    await asyncio.sleep(0.05)
    assert bodies == [] and b"done" not in transport.written, "close() no longer drops a body in flight"
    assert handler._parser is not None
    messages, upgraded, _tail = handler._parser.feed_data(b"cdef" + b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    assert len(messages) == 1 and not upgraded  # the next head is returned to the caller, not queued
    await asyncio.sleep(0.05)
    assert bodies == [b"abcdef"]
    assert transport.written.count(b"HTTP/1.1 200") == 1 and transport.written.endswith(b"done")
    await asyncio.wait_for(handler.shutdown(5), 5)
    assert transport.closed
    handler.connection_lost(None)


async def test_resume_reading_goes_through_data_received_with_no_bytes() -> None:
    """A parser paused by flow control resumes through ``data_received(b"")``: the drain forwards it too."""
    seen: list[bytes] = []

    class Recording(web.RequestHandler):
        def data_received(self, data: bytes) -> None:
            seen.append(data)
            super().data_received(data)

    handler = Recording(web.Server(lambda request: web.Response()),  # type: ignore[arg-type,return-value]
                        loop=asyncio.get_running_loop())
    handler.connection_made(_Transport())
    handler.resume_reading()
    assert seen == [b""]
    handler.connection_lost(None)


async def test_runner_cleanup_stops_sites_before_closing_connections() -> None:
    """``GuardedSite.stop`` marks its handlers draining; it must run before ``close()`` and ``shutdown()``."""
    order: list[str] = []

    class Recording(web.RequestHandler):
        def close(self) -> None:
            order.append("close")
            super().close()

        async def shutdown(self, timeout: float | None = 15.0) -> None:
            order.append("shutdown")
            await super().shutdown(timeout)

    class Site(web.BaseSite):
        name = "recording"

        async def start(self) -> None:
            await super().start()

        async def stop(self) -> None:
            order.append("site.stop")
            assert [type(h) for h in runner.server.connections] == [Recording]  # type: ignore[union-attr]
            await super().stop()

    runner = web.AppRunner(web.Application(), shutdown_timeout=5)
    await runner.setup()
    assert runner.server is not None
    await Site(runner).start()
    handler = Recording(runner.server, loop=asyncio.get_running_loop())
    handler.connection_made(_Transport())
    await runner.cleanup()
    assert order == ["site.stop", "close", "shutdown"]
    handler.connection_lost(None)
