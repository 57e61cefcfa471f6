"""``GET``/``DELETE /throttle`` on the admin listener and the ``throttle`` CLI, in-process.

The real public app (``create_app``) before a fake registry, its admin app
beside it, both on this test's event loop. The CLI is plain ``urllib``, so
it runs in a thread while the loop serves it.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import generate_latest

from proxy.cli import main as cli_main
from proxy.cli.throttle import format_entries
from proxy.config import parse_config
from proxy.http import create_app
from proxy.http.keys import LIVE, STATS
from proxy.observability.admin import create_admin_app
from proxy.observability.metrics import Metrics
from tests.proxy.http.conftest import FakeRegistry, write_users


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


@dataclass
class Pair:
    public: TestClient
    admin: TestClient
    app: web.Application
    metrics: Metrics
    config_path: Path

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin.server.port}"


Make = Callable[..., Awaitable[Pair]]


@pytest.fixture
def make(tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]],
         aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Make:
    async def build(throttle: dict[str, Any] | None = None) -> Pair:
        backend = await aiohttp_server(FakeRegistry().app())
        write_users(tmp_path)
        data: dict[str, Any] = {"backend": f"http://127.0.0.1:{backend.port}", "admin": "off", "tls": "off",
                                "auth": {"token": {"service": "t"}, "challenge": "basic"},
                                "throttle": throttle or {"failures": 10, "window": 300}}
        app = create_app(parse_config(data, tmp_path / "proxy.yml"))
        public = await aiohttp_client(app)
        metrics = Metrics(app[STATS])
        admin = await aiohttp_client(create_admin_app(app, metrics))
        config_path = tmp_path / "cli.yml"  # what the CLI reads: admin.listen names the test's admin server
        config_path.write_text(f"backend: http://127.0.0.1:9\nadmin: {{listen: '127.0.0.1:{admin.server.port}'}}\n")
        return Pair(public, admin, app, metrics, config_path)

    return build


async def ping(pair: Pair, user: str, password: str) -> int:
    resp = await pair.public.get("/v2/", headers=basic(user, password))
    await resp.read()
    return resp.status


async def test_forty_concurrent_guesses_admit_ten_and_the_right_one_gets_429(make: Make) -> None:
    pair = await make()
    wrong = [asyncio.create_task(ping(pair, "mark", f"wrong{i}")) for i in range(39)]
    for answered, done in enumerate(asyncio.as_completed(wrong), 1):
        await done
        if answered == 10:  # ten answers are in: every slot is failed or in flight, the rest still racing
            break
    right = await ping(pair, "mark", "pusherpwd")
    statuses = [await t for t in wrong]
    assert statuses.count(401) <= 10 and statuses.count(401) + statuses.count(429) == 39
    assert right == 429
    assert pair.app[STATS].throttled == 40 - statuses.count(401)
    text = generate_latest(pair.metrics.registry).decode()
    assert f"registry_auth_proxy_throttled_requests_total {pair.app[STATS].throttled}.0" in text

    listed = await (await pair.admin.get("/throttle")).json()
    assert listed["enabled"] is True and listed["limits"]["failures"] == 10
    top = listed["entries"][0]
    assert {k: top[k] for k in ("kind", "address", "user", "failures", "in_flight", "limit")} == {
        "kind": "address+user", "address": "127.0.0.1", "user": "mark", "failures": statuses.count(401),
        "in_flight": 0, "limit": 10}
    assert 0 < top["seconds_until_free"] <= 300
    assert {e["kind"] for e in listed["entries"]} == {"address+user", "address", "user"}
    assert "pusherpwd" not in str(listed) and "wrong" not in str(listed)


async def test_other_users_from_the_address_are_not_locked_out_and_delete_forgives(make: Make) -> None:
    pair = await make({"failures": 3, "window": 300})
    for _ in range(3):
        assert await ping(pair, "mark", "bad") == 401
    assert await ping(pair, "mark", "pusherpwd") == 429
    assert await ping(pair, "reader", "readerpwd") == 200  # the same address, another user
    only_reader = await (await pair.admin.get("/throttle", params={"user": "reader"})).json()
    assert only_reader["entries"] == []  # reader's success left nothing behind
    assert (await pair.admin.delete("/throttle")).status == 400  # an unfiltered DELETE forgives nothing
    assert (await pair.admin.delete("/throttle", params={"address": "127.0.0.1", "user": "reader"})).status == 200
    assert await ping(pair, "mark", "pusherpwd") == 429
    resp = await pair.admin.delete("/throttle", params={"address": "127.0.0.1", "user": "mark"})
    assert (await resp.json()) == {"cleared": 1}
    assert await ping(pair, "mark", "pusherpwd") == 200
    resp = await pair.admin.delete("/throttle", params={"all": "1"})
    assert (await resp.json())["cleared"] == 2  # the address key and mark's user key
    assert (await (await pair.admin.get("/throttle")).json())["entries"] == []


async def test_disabled_throttle_is_reported_and_nothing_is_cleared(make: Make) -> None:
    pair = await make({"enabled": False})
    assert pair.app[LIVE].runtime.gate.throttle is None
    for _ in range(12):
        assert await ping(pair, "mark", "bad") == 401
    assert await (await pair.admin.get("/throttle")).json() == {"enabled": False, "entries": []}
    assert await (await pair.admin.delete("/throttle", params={"all": "1"})).json() == {"cleared": 0}


async def test_cli_lists_and_clears_through_the_admin_listener(make: Make, capsys: pytest.CaptureFixture[str]) -> None:
    pair = await make({"failures": 2, "window": 300})
    for _ in range(2):
        assert await ping(pair, "mark", "bad") == 401

    def cli(*argv: str) -> int:
        return cli_main([*argv, "--config", str(pair.config_path)])

    assert await asyncio.to_thread(cli, "throttle", "list") == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["KIND", "ADDRESS", "USER", "FAILURES", "IN_FLIGHT", "LIMIT", "FREE_IN",
                                           "DELAY"]
    assert out.splitlines()[1].split()[:6] == ["address+user", "127.0.0.1", "mark", "2", "0", "2"]
    assert await asyncio.to_thread(cli, "throttle", "clear") == 2  # nothing named: refused before any call
    assert "--all" in capsys.readouterr().err
    assert await asyncio.to_thread(cli, "throttle", "clear", "--user", "mark", "--address", "127.0.0.1") == 0
    assert "cleared 1 key(s)" in capsys.readouterr().out
    assert await ping(pair, "mark", "pusherpwd") == 200
    assert await asyncio.to_thread(cli, "throttle", "clear", "--all") == 0
    assert await asyncio.to_thread(cli, "throttle", "list", "--json") == 0
    assert '"entries": []' in capsys.readouterr().out.splitlines()[-1]


async def test_cli_says_when_the_admin_listener_does_not_answer(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "cli.yml"
    config.write_text("backend: http://127.0.0.1:9\nadmin: off\n")
    assert await asyncio.to_thread(cli_main, ["throttle", "list", "--config", str(config)]) == 2
    assert "admin.listen is off" in capsys.readouterr().err
    assert await asyncio.to_thread(cli_main, ["throttle", "list", "--config", str(config),
                                              "--admin", "http://127.0.0.1:9"]) == 1
    assert "http://127.0.0.1:9/throttle" in capsys.readouterr().err


def test_table_format_marks_free_keys_and_delays() -> None:
    text = format_entries([
        {"kind": "user", "address": None, "user": "mark", "failures": 30, "in_flight": 0, "limit": None,
         "seconds_until_free": 120, "delay": 1.5},
        {"kind": "address", "address": "10.0.0.1", "user": None, "failures": 3, "in_flight": 1, "limit": 100,
         "seconds_until_free": 0, "delay": 0.0}])
    lines = text.splitlines()
    assert lines[1].split() == ["user", "-", "mark", "30", "0", "-", "120s", "1.5s"]
    assert lines[2].split() == ["address", "10.0.0.1", "-", "3", "1", "100", "free", "-"]


async def test_a_users_failures_slow_the_check_down_but_never_refuse_it(make: Make) -> None:
    pair = await make({"failures": 10, "window": 300, "slow_after": 1, "max_delay": 0.3})
    for _ in range(3):
        assert await ping(pair, "mark", "bad") == 401
    listed = await (await pair.admin.get("/throttle", params={"user": "mark"})).json()
    (by_user,) = [e for e in listed["entries"] if e["kind"] == "user"]
    assert by_user["delay"] == 0.3
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await ping(pair, "mark", "pusherpwd") == 200  # slowed, not refused
    assert loop.time() - started >= 0.3  # a lower bound only: a slow machine cannot fail it
