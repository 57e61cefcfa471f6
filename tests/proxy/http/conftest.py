"""Fast in-process fixtures: the real app (``create_app``) before a fake backend ``web.Application``.

Both run in the test's event loop through pytest-aiohttp (``aiohttp_client``,
``aiohttp_server``); no process is spawned. The fake backend records what it
receives, so a test can prove what did (or did not) reach the registry.
The real registry and real clients are the integration suite's job.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from proxy.config import parse_config
from proxy.http import create_app


@dataclass
class Seen:
    method: str
    raw_path: str
    headers: dict[str, list[str]]
    body_sha256: str
    body_size: int


@dataclass
class FakeRegistry:
    """Answers like distribution for the routes tests use; ``seen`` is everything it received."""

    seen: list[Seen] = field(default_factory=list)
    blob: bytes = b""
    delay: float = 0.0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=1 << 30)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        digest = hashlib.sha256()
        size = 0
        async for chunk in request.content.iter_chunked(65536):
            digest.update(chunk)
            size += len(chunk)
        headers: dict[str, list[str]] = {}
        for name, value in request.headers.items():
            headers.setdefault(name.lower(), []).append(value)
        self.seen.append(Seen(request.method, request.raw_path, headers, digest.hexdigest(), size))
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        path = request.path
        base = f"http://{request.host}"
        if request.method == "POST" and path.endswith("/blobs/uploads/"):
            return web.Response(status=202, headers={"Location": f"{base}{path}u-1?_state=s",
                                                     "Docker-Upload-UUID": "u-1", "Range": "0-0"})
        if request.method in ("PATCH", "PUT"):
            return web.Response(status=202 if request.method == "PATCH" else 201,
                                headers={"Location": f"{base}{path}", "Range": f"0-{max(size - 1, 0)}"})
        if "/blobs/sha256:" in path:
            return web.Response(body=self.blob, content_type="application/octet-stream",
                                headers={"Docker-Content-Digest": "sha256:" + hashlib.sha256(self.blob).hexdigest()})
        if path == "/v2/_catalog":
            return web.json_response({"repositories": ["a", "b"]})
        return web.json_response({}, headers={"Docker-Distribution-Api-Version": "registry/2.0"})


@dataclass
class World:
    client: TestClient
    backend: FakeRegistry
    config_path: Path

    def backend_saw(self, method: str | None = None) -> list[Seen]:
        return [s for s in self.backend.seen if method is None or s.method == method]


def write_users(folder: Path) -> None:
    lines = []
    for user, password in (("mark", "pusherpwd"), ("reader", "readerpwd")):
        lines.append(f"{user}:" + bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode())
    (folder / "users.htpasswd").write_text("\n".join(lines) + "\n")
    (folder / "users.groups").write_text("pusher: mark\n")


@pytest.fixture
def make_world(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]],
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> Callable[..., Awaitable[World]]:
    """``await make_world(backend_url=None, **config)``: the real app before a fake registry."""

    async def make(backend_url: str | None = None, backend: FakeRegistry | None = None, **config: Any) -> World:
        backend = backend or FakeRegistry()
        if backend_url is None:
            server = await aiohttp_server(backend.app())
            backend_url = f"http://127.0.0.1:{server.port}"
        write_users(tmp_path)
        data: dict[str, Any] = {"backend": backend_url, "admin": "off", "tls": "off",
                                "auth": {"token": {"service": "test"}}}
        for key, value in config.items():
            if isinstance(value, dict) and isinstance(data.get(key), dict):
                data[key] = {**data[key], **value}
            else:
                data[key] = value
        path = tmp_path / "proxy.yml"
        app = create_app(parse_config(data, path))
        return World(await aiohttp_client(app), backend, path)

    return make
