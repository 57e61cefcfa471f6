"""SIGHUP's config reload in-process: one runtime builder, swapped whole, old one kept on any error."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from pathlib import Path

import bcrypt
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from proxy.config import load_config
from proxy.http import create_app
from proxy.http.keys import LIVE
from proxy.server.reload import reload_config

MARK = {"Authorization": "Basic " + base64.b64encode(b"mark:pusherpwd").decode()}
BASE = {"tls": "off", "admin": "off", "backend": "http://127.0.0.1:9", "auth": {"challenge": "basic"},
        "throttle": {"failures": 2, "window": 300}}


def _write(path: Path, **extra: object) -> None:
    path.write_text(yaml.safe_dump({**BASE, **extra}))


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:
    hashed = bcrypt.hashpw(b"pusherpwd", bcrypt.gensalt(4)).decode()
    (tmp_path / "users.htpasswd").write_text(f"mark:{hashed}\n")
    (tmp_path / "users.groups").write_text("pusher: mark\nadmins:\n")
    _write(tmp_path / "proxy.yml")
    app = create_app(load_config(tmp_path / "proxy.yml"))
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


def _app(client: TestClient) -> web.Application:
    return client.server.app  # type: ignore[return-value]


async def test_new_access_applies_to_the_next_request(client: TestClient, tmp_path: Path) -> None:
    # before: mark (pusher) passes the gate and reaches the (absent) backend: 502
    assert (await client.post("/v2/team/app/blobs/uploads/", headers=MARK)).status == 502
    old = _app(client)[LIVE].runtime
    _write(tmp_path / "proxy.yml", access={"push": ["admins"]})
    assert reload_config(_app(client))
    new = _app(client)[LIVE].runtime
    assert new is not old
    assert new.gate.verifier is old.gate.verifier  # same user files: the password pool is kept
    assert new.gate.throttle is old.gate.throttle  # same throttle settings: failed logins are not forgiven
    assert new.token_key == old.token_key
    assert (await client.post("/v2/team/app/blobs/uploads/", headers=MARK)).status == 403


async def test_a_config_that_does_not_load_keeps_the_old_one(client: TestClient, tmp_path: Path,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    old = _app(client)[LIVE].runtime
    (tmp_path / "proxy.yml").write_text("access: {push: pushers}\n")
    assert not reload_config(_app(client))
    assert _app(client)[LIVE].runtime is old
    assert "keeping the old config" in caplog.text
    (tmp_path / "short.key").write_bytes(b"x" * 10)
    _write(tmp_path / "proxy.yml", auth={"challenge": "basic", "token": {"secret_file": "short.key"}})
    assert not reload_config(_app(client))
    assert _app(client)[LIVE].runtime is old


async def test_restart_only_keys_keep_their_old_value(client: TestClient, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    old = _app(client)[LIVE].runtime
    _write(tmp_path / "proxy.yml", backend="http://127.0.0.1:10", limits={"max_connections": 5})
    assert reload_config(_app(client))
    new = _app(client)[LIVE].runtime
    assert new.config.backend == old.config.backend and new.upstream is old.upstream
    assert new.config.limits == old.config.limits
    assert "backend changed" in caplog.text and "limits changed" in caplog.text


async def test_client_address_settings_need_a_restart(client: TestClient, tmp_path: Path,
                                                      caplog: pytest.LogCaptureFixture) -> None:
    """The listener decided whose address each open connection has: a reload must not half-change that."""
    old = _app(client)[LIVE].runtime
    _write(tmp_path / "proxy.yml", proxy_protocol={"trusted": ["10.0.0.0/8"]}, trusted_proxies=["10.1.0.0/16"])
    assert reload_config(_app(client))
    new = _app(client)[LIVE].runtime
    assert new.config.proxy_protocol == old.config.proxy_protocol
    assert new.config.trusted_proxies == old.config.trusted_proxies == ()
    assert "proxy_protocol changed" in caplog.text and "trusted_proxies changed" in caplog.text


async def test_new_user_files_get_a_new_pool_and_the_old_one_is_closed(client: TestClient, tmp_path: Path) -> None:
    old = _app(client)[LIVE].runtime
    (tmp_path / "other.htpasswd").write_text((tmp_path / "users.htpasswd").read_text())
    _write(tmp_path / "proxy.yml", auth={"challenge": "basic", "htpasswd": "other.htpasswd"})
    assert reload_config(_app(client))
    new = _app(client)[LIVE].runtime
    assert new.gate.verifier is not old.gate.verifier
    with pytest.raises(RuntimeError, match="shutdown"):  # the old pool takes no new checks
        await old.gate.verifier.verify("mark", "not-cached")
    assert (await client.get("/v2/", headers=MARK)).status == 502  # logged in, forwarded to the absent backend
    wrong = {"Authorization": "Basic " + base64.b64encode(b"mark:nope").decode()}
    assert (await client.get("/v2/", headers=wrong)).status == 401
