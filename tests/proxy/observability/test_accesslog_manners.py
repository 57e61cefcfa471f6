"""Access-log manners in-process: body bytes as Apache's ``%b``, RFC 3339 times, ``sent_bytes`` alike.

The real app, the real access-log hook and the body counter ``serve``
installs (``count_body_bytes``), before a small backend that answers with
an exact body, a chunked body, an empty 201 and HEAD.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest

from proxy.config import Limits, parse_config
from proxy.http import create_app
from proxy.http.keys import STATS
from proxy.observability.accesslog import AccessSink, access_log, make_access_logger, rfc3339
from proxy.observability.bodybytes import body_bytes, count_body_bytes
from proxy.observability.metrics import Metrics
from proxy.server.aiohttp_seams import GuardedSite
from tests.proxy.http.conftest import write_users
from tests.proxy.http.test_app import basic

BLOB = bytes(range(256)) * 48 + b"tail"  # 12292 bytes: an exact size no header block could fake
CHUNKS = (b"a" * 1000, b"b" * 1000, b"c" * 1000)
DIGEST = "sha256:" + "0" * 64
MARK = basic("mark", "pusherpwd")
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


async def _backend(request: web.Request) -> web.StreamResponse:
    """Enough of a registry: a blob with Content-Length, a chunked manifest, an empty 201."""
    await request.read()
    if request.method == "PUT":
        return web.Response(status=201, headers={"Location": "/v2/team/app/blobs/" + DIGEST})
    if request.path.endswith("/manifests/chunked"):
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for chunk in CHUNKS:
            await response.write(chunk)
        await response.write_eof()
        return response
    return web.Response(body=BLOB, content_type="application/octet-stream")


@dataclass
class Logged:
    client: TestClient
    path: Path
    metrics: Metrics

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []

    async def wait_lines(self, count: int) -> list[str]:
        """The hook runs after the last byte, maybe after the client has read it: wait (generously) for it."""
        for _ in range(500):
            if len(self.lines()) >= count:
                break
            await asyncio.sleep(0.01)
        return self.lines()

    def scrape(self) -> str:
        return generate_latest(self.metrics.registry).decode()


@pytest.fixture
def logged(tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]],
           aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Callable[[str], Awaitable[Logged]]:
    async def make(fmt: str) -> Logged:
        backend_app = web.Application()
        backend_app.router.add_route("*", "/{tail:.*}", _backend)
        backend = await aiohttp_server(backend_app)
        write_users(tmp_path)
        data: dict[str, Any] = {"backend": f"http://127.0.0.1:{backend.port}", "admin": "off", "tls": "off",
                                "log": {"format": fmt, "file": "access.log"}, "auth": {"token": {"service": "t"}}}
        config = parse_config(data, tmp_path / "proxy.yml")
        app = create_app(config)
        count_body_bytes(app)  # as serve does
        metrics = Metrics(app[STATS])
        server = TestServer(app)
        await server.start_server(access_log_class=make_access_logger(AccessSink(config.log.file), metrics, fmt),
                                  access_log=access_log)
        assert config.log.file is not None
        return Logged(await aiohttp_client(server), config.log.file, metrics)

    return make


async def _exchange(log: Logged) -> None:
    """GET blob, HEAD blob, GET chunked, PUT (empty 201), a refused push: in this order."""
    blob = "/v2/team/app/blobs/" + DIGEST
    assert (await log.client.get(blob, headers=MARK)).status == 200
    head = await log.client.head(blob, headers=MARK)
    assert head.status == 200 and head.headers["Content-Length"] == str(len(BLOB))  # a length, but no body
    chunked = await log.client.get("/v2/team/app/manifests/chunked", headers=MARK)
    assert await chunked.read() == b"".join(CHUNKS) and chunked.headers.get("Transfer-Encoding") == "chunked"
    put = await log.client.put("/v2/team/app/blobs/uploads/u-1?digest=" + DIGEST, headers=MARK, data=b"x")
    assert put.status == 201 and await put.read() == b""
    refused = await log.client.post("/v2/team/app/blobs/uploads/", headers=basic("mark", "wrong"))
    assert refused.status == 401
    refused_body = await refused.read()
    assert refused_body
    assert len(await log.wait_lines(5)) == 5


async def test_combined_bytes_are_the_body_only_and_dash_without_one(logged: Callable[[str], Awaitable[Logged]],
                                                                     ) -> None:
    log = await logged("combined")
    await _exchange(log)
    get, head, chunked, put, refused = log.lines()
    assert '"GET /v2/team/app/blobs/' in get and f" 200 {len(BLOB)} " in get
    assert '"HEAD /v2/team/app/blobs/' in head and " 200 - " in head  # Content-Length is not bytes sent
    assert " 200 3000 " in chunked  # the body, without chunk-size lines
    assert '"PUT /v2/team/app/blobs/uploads/u-1' in put and " 201 - " in put  # was ~400: the headers
    assert re.search(r'" 401 (\d+) ', refused)


async def test_json_bytes_are_0_without_a_body_and_times_are_rfc3339_utc_ms(
    logged: Callable[[str], Awaitable[Logged]],
) -> None:
    log = await logged("json")
    before = time.time()
    await _exchange(log)
    entries = [json.loads(line) for line in log.lines()]
    assert [(e["method"], e["status"], e["bytes_out"]) for e in entries[:4]] == [
        ("GET", 200, len(BLOB)), ("HEAD", 200, 0), ("GET", 200, 3000), ("PUT", 201, 0)]
    assert entries[4]["status"] == 401 and entries[4]["bytes_out"] > 0
    for entry in entries:
        assert RFC3339_MS.match(entry["time"]), entry["time"]
        logged_at = datetime.strptime(entry["time"], "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()
        assert before - 1 <= logged_at <= time.time() + 1  # UTC really: a local time would be hours off


async def test_sent_bytes_metric_counts_the_body_only(logged: Callable[[str], Awaitable[Logged]]) -> None:
    log = await logged("combined")
    await _exchange(log)
    text = log.scrape()
    assert f'registry_auth_proxy_sent_bytes_total{{action="pull"}} {float(len(BLOB) + 3000)}' in text
    refused = re.search(r'" 401 (\d+) ', log.lines()[4])
    assert refused is not None
    # the 401's JSON body only (as logged); the empty 201 adds 0 where it used to add its headers
    assert f'registry_auth_proxy_sent_bytes_total{{action="push"}} {float(refused.group(1))}' in text


def test_rfc3339_is_utc_with_milliseconds_truncated() -> None:
    assert rfc3339(0.0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1796224445.1239) == "2026-12-02T15:14:05.123Z"
    assert rfc3339(1796224445.9999) == "2026-12-02T15:14:05.999Z"  # never rounded up into the next second


async def test_answers_made_outside_the_app_count_their_body(tmp_path: Path) -> None:
    """A parser refusal never reaches the app's prepare hook: its body is its length, not headers + body."""
    sink = AccessSink(tmp_path / "access.log")
    metrics = Metrics(create_app(parse_config({"backend": "http://127.0.0.1:9", "admin": "off", "tls": "off",
                                               "auth": {"token": {"service": "t"}}},
                                              tmp_path / "proxy.yml"))[STATS])
    options = {"access_log_class": make_access_logger(sink, metrics, "json"), "access_log": access_log}
    app = web.Application()
    runner = web.AppRunner(app, **options)
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0, limits=Limits(), handler_options=options)
    await site.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")
        answer = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        body = answer.split(b"\r\n\r\n", 1)[1]
        for _ in range(100):
            if (tmp_path / "access.log").exists() and (tmp_path / "access.log").read_text():
                break
            await asyncio.sleep(0.02)
        (entry,) = [json.loads(line) for line in (tmp_path / "access.log").read_text().splitlines()]
        assert entry["status"] == 400 and entry["bytes_out"] == len(body)
    finally:
        await runner.cleanup()
        sink.close()


def test_body_bytes_is_0_for_head_and_bodyless_statuses() -> None:
    class _Request(dict[str, object]):
        def __init__(self, method: str) -> None:
            super().__init__()
            self.method = method

    streamed = web.StreamResponse(status=200)
    assert body_bytes(_Request("HEAD"), streamed) == 0  # type: ignore[arg-type]
    assert body_bytes(_Request("GET"), web.StreamResponse(status=204)) == 0  # type: ignore[arg-type]
    assert body_bytes(_Request("GET"), web.StreamResponse(status=304)) == 0  # type: ignore[arg-type]
    assert body_bytes(_Request("GET"), streamed) is None  # type: ignore[arg-type]  # nobody counted: unknown


async def test_a_user_refused_after_login_is_logged_by_name(logged: Callable[[str], Awaitable[Logged]]) -> None:
    """reader proves who they are, then the policy refuses the push: the line names reader, not ``-``.

    With Basic and with a Bearer token (which grants no push scope to reader: the
    token endpoint leaves it out, and the push is refused by the token's claims).
    """
    log = await logged("json")
    uploads = "/v2/team/app/blobs/uploads/"
    assert (await log.client.post(uploads, headers=basic("reader", "readerpwd"))).status in (401, 403)
    token = await log.client.get("/token?service=t&scope=repository:team/app:pull,push",
                                 headers=basic("reader", "readerpwd"))
    assert token.status == 200
    bearer = {"Authorization": "Bearer " + (await token.json())["token"]}
    assert (await log.client.post(uploads, headers=bearer)).status in (401, 403)
    assert (await log.client.post(uploads, headers=basic("reader", "wrong"))).status == 401
    entries = [json.loads(line) for line in await log.wait_lines(4)]
    assert [(e["method"], e["user"]) for e in entries] == [
        ("POST", "reader"), ("GET", "reader"), ("POST", "reader"), ("POST", None)]  # a wrong password proves nobody
    assert entries[0]["status"] in (401, 403) and entries[2]["status"] in (401, 403)


async def test_an_anonymous_token_refused_a_push_is_logged_without_a_user(
        logged: Callable[[str], Awaitable[Logged]]) -> None:
    """An anonymous token proves nobody: its refused push is a 401 (not a 500) logged with no user."""
    log = await logged("json")
    token = await log.client.get("/token?service=t&scope=repository:team/app:pull,push")
    assert token.status == 200
    bearer = {"Authorization": "Bearer " + (await token.json())["token"]}
    assert (await log.client.post("/v2/team/app/blobs/uploads/", headers=bearer)).status == 401
    entries = [json.loads(line) for line in await log.wait_lines(2)]
    assert [(e["method"], e["status"], e["user"]) for e in entries] == [("GET", 200, None), ("POST", 401, None)]
