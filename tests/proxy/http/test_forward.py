"""Forwarding in-process: bodies stream through untouched; a dead, unreachable or silent backend is named right."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from tests.proxy.http.conftest import FakeRegistry, World
from tests.proxy.http.test_app import basic

MakeWorld = Callable[..., Awaitable[World]]
UPLOAD = "/v2/team/app/blobs/uploads/u-1?_state=s"


async def test_chunked_upload_reaches_the_backend_byte_for_byte(make_world: MakeWorld) -> None:
    world = await make_world()
    data = os.urandom(3 * 1024 * 1024 + 17)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 100_000):
            yield data[i:i + 100_000]

    resp = await world.client.patch(UPLOAD, data=chunks(), headers=basic("mark", "pusherpwd"))
    assert resp.status == 202
    (seen,) = world.backend_saw("PATCH")
    assert (seen.body_sha256, seen.body_size) == (hashlib.sha256(data).hexdigest(), len(data))
    assert seen.headers.get("transfer-encoding") == ["chunked"]  # chunked stays chunked


async def test_blob_download_streams_back_with_length_and_digest(make_world: MakeWorld) -> None:
    blob = os.urandom(2 * 1024 * 1024)
    world = await make_world(backend=FakeRegistry(blob=blob))
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    resp = await world.client.get(f"/v2/team/app/blobs/{digest}")
    assert resp.status == 200
    assert resp.content_length == len(blob)
    assert await resp.read() == blob
    head = await world.client.head(f"/v2/team/app/blobs/{digest}")
    assert head.content_length == len(blob) and await head.read() == b""


async def test_refused_backend_is_502(make_world: MakeWorld) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    world = await make_world(backend_url=f"http://127.0.0.1:{port}")
    resp = await world.client.get("/v2/_catalog")
    assert resp.status == 502
    assert (await resp.json())["errors"][0]["message"].startswith("the registry behind this proxy is unreachable")


@pytest.fixture
def full_backlog() -> Iterator[int]:
    """A port that accepts no connection: its one-slot accept queue is already full, so SYNs are dropped."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))
    yield port
    filler.close()
    listener.close()


async def test_connect_timeout_is_502_not_504(make_world: MakeWorld, full_backlog: int) -> None:
    """README: 502 when the backend cannot be reached in ``timeouts.connect``; 504 is for a silent one."""
    world = await make_world(backend_url=f"http://127.0.0.1:{full_backlog}", timeouts={"connect": 0.3})
    resp = await world.client.get("/v2/_catalog")
    assert resp.status == 502
    assert "unreachable" in (await resp.json())["errors"][0]["message"]


async def test_silent_backend_is_504(make_world: MakeWorld) -> None:
    world = await make_world(backend=FakeRegistry(delay=2.0), timeouts={"read": 0.3})
    resp = await world.client.get("/v2/_catalog")
    assert resp.status == 504
    assert "did not answer in time" in (await resp.json())["errors"][0]["message"]
    await asyncio.sleep(0)


async def test_connect_timeout_on_a_pull_is_502_not_504(make_world: MakeWorld, full_backlog: int) -> None:
    """The same for a pull, which the lean client sends (its connect timeout is not a read timeout)."""
    world = await make_world(backend_url=f"http://127.0.0.1:{full_backlog}", timeouts={"connect": 0.3})
    resp = await world.client.get("/v2/library/x/manifests/latest")
    assert resp.status == 502
    assert "unreachable" in (await resp.json())["errors"][0]["message"]


async def test_silent_backend_on_a_pull_is_504(make_world: MakeWorld) -> None:
    world = await make_world(backend=FakeRegistry(delay=2.0), timeouts={"read": 0.3})
    resp = await world.client.get("/v2/library/x/manifests/latest")
    assert resp.status == 504
    assert "did not answer in time" in (await resp.json())["errors"][0]["message"]
