"""Access log and metrics in-process: the real app, the real access-log hook, a fake registry behind."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest

from proxy.config import parse_config
from proxy.http import create_app
from proxy.http.keys import STATS
from proxy.observability.accesslog import AccessSink, access_log, make_access_logger
from proxy.observability.metrics import Metrics
from tests.proxy.http.conftest import FakeRegistry, write_users
from tests.proxy.http.test_app import basic


class Logged:
    def __init__(self, client: TestClient, path: Path, metrics: Metrics) -> None:
        self.client = client
        self.path = path
        self.metrics = metrics

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines()

    def scrape(self) -> str:
        return generate_latest(self.metrics.registry).decode()


@pytest.fixture
def logged(tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]],
           aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Callable[[str], Awaitable[Logged]]:
    async def make(fmt: str) -> Logged:
        backend = await aiohttp_server(FakeRegistry().app())
        write_users(tmp_path)
        data: dict[str, Any] = {"backend": f"http://127.0.0.1:{backend.port}", "admin": "off", "tls": "off",
                                "log": {"format": fmt, "file": "access.log"}, "auth": {"token": {"service": "t"}}}
        config = parse_config(data, tmp_path / "proxy.yml")
        app = create_app(config)
        metrics = Metrics(app[STATS])
        sink = AccessSink(config.log.file)
        logger_class = make_access_logger(sink, metrics, fmt)
        server = TestServer(app)  # started here: aiohttp_client would drop the runner options
        await server.start_server(access_log_class=logger_class, access_log=access_log)
        client = await aiohttp_client(server)
        assert config.log.file is not None
        return Logged(client, config.log.file, metrics)

    return make


async def test_combined_line_names_the_verified_user_and_body_bytes(logged: Callable[[str], Awaitable[Logged]]) -> None:
    log = await logged("combined")
    await log.client.post("/v2/team/app/blobs/uploads/", headers={**basic("mark", "pusherpwd"),
                                                                    "User-Agent": 'evil"\tagent'})
    await log.client.get("/token?service=t&scope=repository:team/app:pull&password=secret")
    push, token = log.lines()
    assert ' - mark [' in push and '"POST /v2/team/app/blobs/uploads/ HTTP/1.1" 202 ' in push
    assert '"evil\\"\\x09agent"' in push  # quotes and control characters cannot forge fields
    assert '"GET /token HTTP/1.1" 200 ' in token and "secret" not in token  # the token endpoint: path only


async def test_json_lines_and_metrics(logged: Callable[[str], Awaitable[Logged]]) -> None:
    log = await logged("json")
    await log.client.post("/v2/team/app/blobs/uploads/", headers=basic("mark", "pusherpwd"))
    await log.client.post("/v2/team/app/blobs/uploads/", headers=basic("mark", "wrong"))
    await log.client.get("/v2/_catalog")
    await log.client.get("/nowhere")
    entries = [json.loads(line) for line in log.lines()]
    assert [(e["method"], e["status"], e["user"]) for e in entries] == [
        ("POST", 202, "mark"), ("POST", 401, None), ("GET", 200, None), ("GET", 404, None)]
    assert {"time", "remote", "path", "protocol", "bytes_out", "bytes_in", "duration_ms"} <= set(entries[0])
    text = log.scrape()
    assert 'registry_auth_proxy_requests_total{action="push",status="202",user="person"} 1.0' in text
    assert 'registry_auth_proxy_requests_total{action="pull",status="200",user="anonymous"} 1.0' in text
    assert 'registry_auth_proxy_requests_total{action="other",status="404",user="anonymous"} 1.0' in text
    assert 'registry_auth_proxy_auth_failures_total{status="401"} 1.0' in text
    assert "registry_auth_proxy_inflight_writes 0.0" in text
    assert "registry_auth_proxy_throttled_requests_total 0.0" in text
