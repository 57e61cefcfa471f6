"""Slow readers, a full backend pool and looping clients, in-process (issue 11 items 4 and 8).

* A client that stops reading a response is cut off after
  ``limits.send_timeout``, which frees its backend slot; one that reads
  slowly but steadily (slower than one 256 KiB chunk per timeout) is not.
* A backend request that finds every slot taken is a 503 "proxy busy" at
  once, never a 504 blaming the backend after ``timeouts.connect``.
* ``limits.requests_per_second``: 429 with ``Retry-After`` per address.

The readers are plain sockets in a thread (the proxy runs on the test's
loop). Socket buffers are made small on both ends, so the reader's pace,
not megabytes of auto-tuned kernel buffer on loopback, decides when the
proxy's writes block; across a real network the same happens with
ordinary buffers and larger blobs. Every bound on time is generous.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from proxy.config import parse_config
from proxy.http import create_app
from proxy.http.keys import STATS
from tests.proxy.http.conftest import FakeRegistry, World, write_users

MakeWorld = Callable[..., Awaitable[World]]
BLOB = os.urandom(1024 * 1024)
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()
BLOB_PATH = f"/v2/team/app/blobs/{DIGEST}"
SMALL_BUFFER = 32 * 1024


async def _small_send_buffer(request: web.Request, response: web.StreamResponse) -> None:
    sock = request.transport.get_extra_info("socket") if request.transport else None
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)


@pytest.fixture
def slow_proxy(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]],
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> Callable[..., Awaitable[TestClient]]:
    """The real app (send_timeout 1 s, one backend slot) before a fake registry serving a 1 MiB blob."""

    async def make(**limits: Any) -> TestClient:
        backend = await aiohttp_server(FakeRegistry(blob=BLOB).app())
        write_users(tmp_path)
        config = parse_config({"backend": f"http://127.0.0.1:{backend.port}", "admin": "off", "tls": "off",
                               "auth": {"token": {"service": "test"}},
                               "limits": {"send_timeout": 1, "max_connections": 1, **limits}},
                              tmp_path / "proxy.yml")
        app = create_app(config)
        app.on_response_prepare.append(_small_send_buffer)
        return await aiohttp_client(app)

    return make


def _reader(port: int, bytes_per_second: float | None, deadline: float = 60) -> tuple[bytes, bool]:
    """GET the blob on a raw socket; read at this pace (None: read nothing for 3 s first).

    Returns what arrived and whether the proxy cut the connection before the whole body did.
    """
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
    sock.settimeout(deadline)
    with sock:
        sock.connect(("127.0.0.1", port))
        sock.sendall(f"GET {BLOB_PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        if bytes_per_second is None:
            time.sleep(3)  # three times send_timeout without reading a byte
        got = bytearray()
        step = 16 * 1024
        started = time.monotonic()
        while True:
            try:
                data = sock.recv(step)
            except ConnectionResetError:
                return bytes(got), True
            if not data:
                break
            got += data
            if bytes_per_second is not None:
                time.sleep(max(0.0, started + len(got) / bytes_per_second - time.monotonic()))
    body = bytes(got).partition(b"\r\n\r\n")[2]
    return body, len(body) < len(BLOB)


async def _settled(app: web.Application, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while app[STATS].requests_in_flight and time.monotonic() < deadline:
        await asyncio.sleep(0.05)


async def test_client_that_stops_reading_is_cut_and_its_backend_slot_freed(
    slow_proxy: Callable[..., Awaitable[TestClient]], caplog: pytest.LogCaptureFixture,
) -> None:
    client = await slow_proxy()
    caplog.set_level(logging.WARNING, "proxy.http.forward")
    body, cut = await asyncio.to_thread(_reader, client.port, None)
    assert cut and len(body) < len(BLOB)
    await _settled(client.app)
    assert client.app[STATS].requests_in_flight == 0
    cuts = [r.getMessage() for r in caplog.records if "limits.send_timeout" in r.getMessage()]
    assert len(cuts) == 1 and cuts[0].startswith("client 127.0.0.1 took nothing of GET /v2/team/app/blobs/")
    assert "backend" not in cuts[0]
    # the only backend slot (max_connections 1) is free again: the next download is whole
    resp = await client.get(BLOB_PATH)
    assert resp.status == 200 and await resp.read() == BLOB


async def test_slow_but_steady_reader_is_not_cut(
    slow_proxy: Callable[..., Awaitable[TestClient]], caplog: pytest.LogCaptureFixture,
) -> None:
    """160 KiB/s: one 256 KiB write waits about 1.5 s, longer than send_timeout (1 s), yet bytes keep moving."""
    client = await slow_proxy()
    caplog.set_level(logging.WARNING, "proxy.http.forward")
    body, cut = await asyncio.to_thread(_reader, client.port, 160 * 1024)
    assert not cut
    assert body == BLOB
    assert not [r for r in caplog.records if "limits.send_timeout" in r.getMessage()]


async def test_full_backend_pool_is_503_proxy_busy_not_504(
    make_world: MakeWorld, aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> None:
    arrived, release = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    async def backend(request: web.Request) -> web.Response:
        seen.append(request.path)
        arrived.set()
        await release.wait()
        return web.json_response({"name": "team/app", "tags": ["v1"]})

    app = web.Application()
    app.router.add_get("/{tail:.*}", backend)
    server = await aiohttp_server(app)
    world = await make_world(backend_url=f"http://127.0.0.1:{server.port}",
                             limits={"max_connections": 1}, timeouts={"connect": 30})
    first = asyncio.create_task(world.client.get("/v2/team/app/tags/list"))
    await asyncio.wait_for(arrived.wait(), 15)  # the one slot is taken
    busy = await world.client.get("/v2/team/app/tags/list")
    assert busy.status == 503
    error = (await busy.json())["errors"][0]
    assert error["code"] == "UNAVAILABLE" and "this proxy is busy" in error["message"]
    assert busy.headers["Retry-After"] == "1"
    assert not first.done()  # answered while the slot was still held: well before the connect timeout
    assert seen == ["/v2/team/app/tags/list"]  # the refused one never reached the backend
    release.set()
    assert (await first).status == 200
    assert (await world.client.get("/v2/team/app/tags/list")).status == 200  # the slot came back


async def test_requests_per_second_refuses_a_burst_per_address(make_world: MakeWorld) -> None:
    world = await make_world(limits={"requests_per_second": 5, "requests_burst": 10})
    statuses, retry_after = [], set()
    for _ in range(50):
        resp = await world.client.get("/v2/team/app/tags/list")
        statuses.append(resp.status)
        if resp.status == 429:
            retry_after.add(resp.headers["Retry-After"])
            error = (await resp.json())["errors"][0]
            assert error["code"] == "TOO_MANY_REQUESTS"
            assert resp.headers["Cache-Control"] == "no-store"
    assert statuses[:10] == [200] * 10  # the burst
    refused = statuses.count(429)
    assert refused >= 1 and set(statuses) == {200, 429}
    assert retry_after and all(int(value) >= 1 for value in retry_after)
    assert len(world.backend_saw("GET")) == 50 - refused  # a refusal costs the backend nothing
    assert world.client.app[STATS].rate_limited == refused
    # another address has its own bucket
    port = world.client.port
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0))) as other:
        for _ in range(10):
            async with other.get(f"http://127.0.0.1:{port}/v2/team/app/tags/list") as resp:
                assert resp.status == 200


async def test_rate_limit_is_off_by_default(make_world: MakeWorld) -> None:
    world = await make_world()
    statuses = [(await world.client.get("/v2/team/app/tags/list")).status for _ in range(60)]
    assert statuses == [200] * 60
