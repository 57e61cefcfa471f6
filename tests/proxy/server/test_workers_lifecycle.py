"""``serve`` as a worker runs it: on sockets it did not bind, with the role's admin, throttle and reload.

In-process, with a fake role: what the worker module must be able to rely
on, and that a role changes nothing it does not name.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bcrypt
from aiohttp import web

from proxy.config import Config, parse_config
from proxy.http.keys import LIVE
from proxy.observability.metrics import Metrics
from proxy.server.lifecycle import serve
from proxy.server.listener import _listening_sockets


class FakeRole:
    """Records what ``serve`` asks of a worker role."""

    def __init__(self, sockets: list[socket.socket], admin_path: str) -> None:
        self.sockets = sockets
        self.admin_path = admin_path
        self.attached: list[object] = []
        self.adjusted: list[Config] = []
        self.throttle = object()  # stands in for the supervisor's
        self.serving = asyncio.Event()
        self.stop: Callable[[], None] | None = None
        self.reload: Callable[[], None] | None = None

    async def start_admin(self, app: web.Application, metrics: Metrics) -> web.AppRunner:
        runner = web.AppRunner(web.Application())
        await runner.setup()
        await web.UnixSite(runner, self.admin_path).start()
        return runner

    def adjust(self, config: Config) -> Config:
        self.adjusted.append(config)
        return config

    def attach(self, app: web.Application) -> None:
        gate = app[LIVE].runtime.gate
        self.attached.append(gate.throttle)
        gate.throttle = self.throttle  # type: ignore[assignment]

    def started(self, *, stop: Callable[[], None], reload: Callable[[], None]) -> None:
        self.stop, self.reload = stop, reload
        self.serving.set()


def _config(tmp_path: Path, port: int) -> Config:
    hashed = bcrypt.hashpw(b"pusherpwd", bcrypt.gensalt(4)).decode()
    (tmp_path / "users.htpasswd").write_text(f"mark:{hashed}\n")
    data: dict[str, Any] = {"listen": f"127.0.0.1:{port}", "tls": "off", "admin": "off", "workers": 2,
                            "backend": "http://127.0.0.1:9", "log": {"access": False}}
    (tmp_path / "proxy.yml").write_text("listen: 127.0.0.1:1\ntls: off\nworkers: 2\n")  # what a reload reads
    return parse_config(data, tmp_path / "proxy.yml")


async def _status(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await reader.read()
    writer.close()
    return answer[:12]


async def test_a_worker_serves_the_inherited_sockets_and_reloads_through_its_role(tmp_path: Path) -> None:
    sockets = _listening_sockets(socket.getaddrinfo("127.0.0.1", 0, socket.AF_INET, socket.SOCK_STREAM), 16)
    port = sockets[0].getsockname()[1]
    role = FakeRole(sockets, str(tmp_path / "admin.sock"))
    task = asyncio.ensure_future(serve(_config(tmp_path, port), worker=role))
    await asyncio.wait_for(role.serving.wait(), 10)
    assert await _status(port) == b"HTTP/1.1 401"  # served on a socket serve() did not bind
    assert Path(role.admin_path).exists()  # the role's admin listener, not admin.listen
    assert len(role.attached) == 1 and role.attached[0] is not None  # the local throttle it replaced
    assert role.reload is not None and role.stop is not None
    role.reload()  # what the supervisor's reload message runs
    assert [c.listen_port for c in role.adjusted] == [1]  # the re-read file went through the role first
    assert len(role.attached) == 2 and role.attached[1] is role.throttle  # kept across the reload, re-attached
    assert await _status(port) == b"HTTP/1.1 401"  # the listen change needs a restart: still here
    role.stop()
    await asyncio.wait_for(task, 10)
    assert all(s.fileno() == -1 for s in sockets)  # its copy closed: with every worker's, the port refuses
