"""What the TLS port says to a client that speaks plain HTTP, and that no answer names the proxy's software.

Real sockets on loopback with :class:`GuardedSite` and a test CA. Plain HTTP
on the TLS port used to get an empty reply and no log line; now it gets a
short text 400 saying to use https, one log line naming the client (never
the request), and the connection closes, with and without
``proxy_protocol``. ``127.0.0.1`` plays the trusted balancer, ``127.0.0.2``
a direct client.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from aiohttp.test_utils import TestServer

from auth.access import Network
from auth.errors import ProxyError
from proxy.config import Limits, parse_config
from proxy.http import create_app
from proxy.http.errors import render_bytes
from proxy.http.keys import STATS
from proxy.observability.accesslog import access_log, make_access_logger
from proxy.observability.bodybytes import count_body_bytes
from proxy.observability.metrics import Metrics
from proxy.server.aiohttp_seams import GuardedSite
from proxy.server.listener import PLAIN_HTTP_ANSWER, plain_text_first
from proxy.server.proxy_protocol import NothingSent
from tests.proxy.http.conftest import FakeRegistry, write_users

BALANCER: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.1/32"),)
SECRET = "c2VjcmV0LXBhc3N3b3Jk"
PLAIN = f"GET /v2/private/repo HTTP/1.1\r\nHost: registry.example\r\nAuthorization: Basic {SECRET}\r\n\r\n".encode()
GET = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
LISTENER_LOG = "proxy.server.listener"


@dataclass
class Tls:
    server: ssl.SSLContext
    client: ssl.SSLContext


@pytest.fixture(scope="module")
def tls() -> Tls:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return Tls(server, client)


async def _ok(request: web.Request) -> web.Response:
    return web.Response(text=f"remote={request.remote}")


Start = Callable[..., Awaitable[GuardedSite]]


@pytest.fixture
async def listen() -> AsyncIterator[Start]:
    runners: list[web.AppRunner] = []

    async def start(app: web.Application | None = None, tls: ssl.SSLContext | None = None,
                    proxy_protocol: tuple[Network, ...] = (), options: dict[str, Any] | None = None) -> GuardedSite:
        if app is None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", _ok)
        options = {"keepalive_timeout": 30.0, **(options or {})}
        runner = web.AppRunner(app, **options)
        await runner.setup()
        runners.append(runner)
        site = GuardedSite(runner, "127.0.0.1", 0, limits=Limits(header_timeout=5.0), handler_options=options,
                           ssl_context=tls, proxy_protocol=proxy_protocol)
        await site.start()
        return site

    yield start
    for runner in runners:
        await runner.cleanup()


async def _exchange(site: GuardedSite, data: bytes, *, source: str = "127.0.0.1",
                    tls: ssl.SSLContext | None = None) -> bytes:
    """Send ``data`` (over TLS when ``tls`` is given) and read until the proxy closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port, local_addr=(source, 0), ssl=tls,
                                                   server_hostname="127.0.0.1" if tls else None)
    answer = b""
    try:
        writer.write(data)
        while chunk := await asyncio.wait_for(reader.read(65536), 10):
            answer += chunk
    finally:
        writer.close()
    return answer


def _head(answer: bytes) -> tuple[str, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    return status, {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}, body


def _plain_http_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "plain HTTP" in r.getMessage()]


def _assert_the_400(answer: bytes) -> None:
    status, headers, body = _head(answer)
    assert status == "HTTP/1.1 400 Bad Request"
    assert headers["content-type"].startswith("text/plain") and headers["connection"] == "close"
    assert int(headers["content-length"]) == len(body) and b"https://" in body
    assert SECRET.encode() not in answer and b"registry.example" not in answer  # echoes nothing


async def test_plain_http_gets_a_text_400_one_log_line_and_tls_still_works(
    listen: Start, tls: Tls, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    site = await listen(tls=tls.server)
    _assert_the_400(await _exchange(site, PLAIN, source="127.0.0.2"))
    for _ in range(100):  # the line is written as the answer goes out; a generous bound, never a timing assert
        if _plain_http_lines(caplog):
            break
        await asyncio.sleep(0.02)
    (line,) = _plain_http_lines(caplog)
    assert "127.0.0.2" in line and "400" in line
    texts = [r.getMessage() for r in caplog.records]
    assert not [t for t in texts if SECRET in t or "/v2/private" in t or "registry.example" in t]
    assert (await _exchange(site, GET, tls=tls.client)).endswith(b"remote=127.0.0.1")  # a normal handshake
    assert site.guard.open == 0  # the plain connection never took a slot


@pytest.mark.parametrize(("prefix", "source", "named"), [
    (b"PROXY TCP4 203.0.113.7 127.0.0.1 40000 443\r\n", "127.0.0.1", "203.0.113.7"),  # through the balancer
    (b"", "127.0.0.2", "127.0.0.2"),  # direct, while proxy_protocol is on
])
async def test_plain_http_with_proxy_protocol_names_the_real_client(
    listen: Start, tls: Tls, caplog: pytest.LogCaptureFixture, prefix: bytes, source: str, named: str,
) -> None:
    caplog.set_level(logging.INFO)
    site = await listen(tls=tls.server, proxy_protocol=BALANCER)
    _assert_the_400(await _exchange(site, prefix + PLAIN, source=source))
    for _ in range(100):
        if _plain_http_lines(caplog):
            break
        await asyncio.sleep(0.02)
    (line,) = _plain_http_lines(caplog)
    assert line.startswith(f"{named}: ")
    header_then_tls = b"PROXY TCP4 203.0.113.9 127.0.0.1 40000 443\r\n"
    if source == "127.0.0.1":  # TLS through the balancer is unaffected
        reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
        writer.write(header_then_tls)
        await writer.drain()
        await writer.start_tls(tls.client, server_hostname="127.0.0.1")
        writer.write(GET)
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        assert answer.endswith(b"remote=203.0.113.9")


async def test_a_plain_listener_serves_plain_http(listen: Start) -> None:
    site = await listen()
    assert (await _exchange(site, GET)).endswith(b"remote=127.0.0.1")


async def test_plain_text_first_only_peeks_and_tells_tls_from_http() -> None:
    loop = asyncio.get_running_loop()
    for first, expected in ((b"\x16\x03\x01\x02\x00", False), (b"\x80\x2e\x01", False), (b"GET / HTTP/1.1", True),
                            (b"delete / HTTP/1.1", True), (b"PRI * HTTP/2.0", True)):
        ours, theirs = socket.socketpair()
        with ours, theirs:
            ours.setblocking(False)
            theirs.sendall(first)
            assert await asyncio.wait_for(plain_text_first(loop, ours), 5) is expected
            assert ours.recv(64) == first  # nothing consumed: TLS or the 400 path still sees every byte
    ours, theirs = socket.socketpair()
    with ours:
        ours.setblocking(False)
        theirs.close()
        with pytest.raises(NothingSent):
            await asyncio.wait_for(plain_text_first(loop, ours), 5)


# -- no answer names the proxy's software -----------------------------------------------------------------


async def test_no_answer_names_python_or_aiohttp(
    listen: Start, tls: Tls, tmp_path: Path, aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    """Forwarded (the fake backend itself says ``Server: Python/... aiohttp/...``), refused, not found,
    parser errors, the plain-HTTP 400, and ``render_bytes``: all say ``registry-auth-proxy`` only."""
    backend = await aiohttp_server(FakeRegistry().app())
    write_users(tmp_path)
    config = parse_config({"backend": f"http://127.0.0.1:{backend.port}", "admin": "off", "tls": "off",
                           "auth": {"token": {"service": "t"}}}, tmp_path / "proxy.yml")
    app = create_app(config)
    count_body_bytes(app)
    options = {"access_log_class": make_access_logger(None, Metrics(app[STATS]), "combined"),
               "access_log": access_log}
    site = await listen(app, tls=tls.server, options=options)
    wrong = "Basic " + "bWFyazp3cm9uZw=="  # mark:wrong
    answers = {
        "forwarded": await _exchange(site, b"GET /v2/team/app/manifests/latest HTTP/1.1\r\nHost: x\r\n"
                                           b"Connection: close\r\n\r\n", tls=tls.client),
        "refused": await _exchange(site, b"POST /v2/team/app/blobs/uploads/ HTTP/1.1\r\nHost: x\r\n"
                                         b"Authorization: " + wrong.encode() + b"\r\nContent-Length: 0\r\n"
                                         b"Connection: close\r\n\r\n", tls=tls.client),
        "not found": await _exchange(site, b"GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
                                     tls=tls.client),
        "bad method": await _exchange(site, b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n", tls=tls.client),
        "bad framing": await _exchange(site, b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                                             b"Content-Length: 2\r\n\r\n", tls=tls.client),
        "plain HTTP": await _exchange(site, GET),
        "render_bytes": render_bytes(ProxyError(503, "UNAVAILABLE", "busy")),
    }
    statuses = {name: _head(answer)[0].split(" ")[1] for name, answer in answers.items()}
    assert statuses == {"forwarded": "200", "refused": "401", "not found": "404", "bad method": "405",
                        "bad framing": "400", "plain HTTP": "400", "render_bytes": "503"}
    for name, answer in answers.items():
        head = answer.partition(b"\r\n\r\n")[0].lower()
        assert b"python" not in head and b"aiohttp" not in head, (name, head)
        assert _head(answer)[1]["server"] == "registry-auth-proxy", name
    assert PLAIN_HTTP_ANSWER.startswith(b"HTTP/1.1 400 ")
