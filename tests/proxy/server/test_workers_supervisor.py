"""The supervisor: its share of a reload, the instance's token key, and a real run with two worker processes.

The run is in-process for the supervisor (``supervise`` on the test's
loop, SIGTERM sent to this process as in ``test_lifecycle``) and real for
the workers (``python -m proxy.server.workers``), on plain HTTP before a
backend that does not answer: start-up, a worker killed and replaced, the
drain, and nothing left behind.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import stat
import urllib.request
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import yaml

from auth.keys import read_token_key
from proxy.config import Config, load_config
from proxy.server.workers import supervise
from proxy.server.workers.process import describe_exit
from proxy.server.workers.supervisor import Supervisor
from proxy.server.workers.worker import shared_key_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _write(tmp_path: Path, **extra: Any) -> Config:
    if not (tmp_path / "users.htpasswd").exists():
        hashed = bcrypt.hashpw(b"pusherpwd", bcrypt.gensalt(4)).decode()
        (tmp_path / "users.htpasswd").write_text(f"mark:{hashed}\n")
    data: dict[str, Any] = {"listen": f"127.0.0.1:{_free_port()}", "tls": "off", "admin": "off", "workers": 2,
                            "backend": "http://127.0.0.1:9", "log": {"access": False}}
    data.update(extra)
    (tmp_path / "proxy.yml").write_text(yaml.safe_dump(data))
    return load_config(tmp_path / "proxy.yml")


def test_reload_keeps_the_throttle_unless_its_settings_change(tmp_path: Path,
                                                              caplog: pytest.LogCaptureFixture) -> None:
    supervisor = Supervisor(_write(tmp_path))
    try:
        throttle = supervisor.throttle
        assert throttle is not None
        throttle.failed(throttle.reserve("10.0.0.1", "mark"))  # type: ignore[arg-type]
        supervisor.reload()
        assert supervisor.throttle is throttle and len(throttle) == 3  # a reload forgives no failed login
        listen = supervisor.config.listen
        _write(tmp_path, throttle={"failures": 4}, workers=3, listen="127.0.0.1:1")
        with caplog.at_level(logging.WARNING):
            supervisor.reload()
        assert supervisor.throttle is not throttle and supervisor.throttle is not None
        assert supervisor.throttle.failures == 4
        assert (supervisor.config.workers, supervisor.config.listen) == (2, listen)  # restart-only: kept
        assert "workers changed" in caplog.text
        _write(tmp_path, throttle={"enabled": False})
        supervisor.reload()
        assert supervisor.throttle is None
        (tmp_path / "proxy.yml").write_text("workers: [\n")
        with caplog.at_level(logging.ERROR):
            supervisor.reload()
        assert "keeps the old config" in caplog.text and supervisor.throttle is None
    finally:
        supervisor.close()
    assert not supervisor.rundir.exists()


async def test_without_a_secret_file_the_workers_share_one_random_key(tmp_path: Path) -> None:
    supervisor = Supervisor(_write(tmp_path))
    try:
        key = supervisor.key_file
        assert key is not None and key.parent == supervisor.rundir
        assert stat.S_IMODE(key.stat().st_mode) == 0o600 and stat.S_IMODE(supervisor.rundir.stat().st_mode) == 0o700
        assert len(read_token_key(key)) >= 32  # the rules every configured key must pass
        config = shared_key_config(supervisor.config, key)
        assert config.auth.token.secret_file == key
        assert shared_key_config(config, tmp_path / "other") is config  # a configured file is left alone
    finally:
        supervisor.close()
    configured = tmp_path / "token.key"
    configured.write_bytes(os.urandom(48))
    supervisor = Supervisor(_write(tmp_path, auth={"token": {"secret_file": str(configured)}}))
    try:  # the configured key is the workers'; the random one is there should a reload unset it
        assert supervisor._spec(supervisor.workers[0], 99).config.auth.token.secret_file == configured
        _write(tmp_path)
        supervisor.reload()
        assert supervisor._spec(supervisor.workers[0], 99).config.auth.token.secret_file == supervisor.key_file
    finally:
        supervisor.close()


def test_exits_are_described() -> None:
    assert describe_exit(-9) == "was killed by SIGKILL"
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(None) == "is running"


def _get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.load(resp)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


async def _until(check: Any, what: str, timeout: float = 30) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not (result := await asyncio.to_thread(check)):
        assert loop.time() < deadline, what
        await asyncio.sleep(0.1)
    return result


async def test_two_workers_serve_are_replaced_and_drain(tmp_path: Path) -> None:
    admin_port = _free_port()
    config = _write(tmp_path, admin={"listen": f"127.0.0.1:{admin_port}"})
    admin = f"http://127.0.0.1:{admin_port}"
    task = asyncio.ensure_future(supervise(config))

    def both() -> list[dict[str, Any]] | None:
        try:
            workers = _get(admin + "/workers")[1]["workers"]
        except OSError:
            return None
        return workers if all(w["serving"] for w in workers) else None

    try:
        workers = await _until(both, "two workers serving")
        pids = [w["pid"] for w in workers]
        reader, writer = await asyncio.open_connection("127.0.0.1", config.listen_port)
        writer.write(b"GET /v2/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert (await reader.read())[:12] == b"HTTP/1.1 401"
        writer.close()
        os.kill(pids[1], signal.SIGKILL)
        replaced = await _until(lambda: (w := both()) and w[1]["pid"] != pids[1] and w, "worker 1 replaced")
        assert replaced[1]["restarts"] == 1 and replaced[0]["pid"] == pids[0]
        pids.append(replaced[1]["pid"])
    finally:
        os.kill(os.getpid(), signal.SIGTERM)
        await asyncio.wait_for(task, 60)
    assert not any(_alive(pid) for pid in pids)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", config.listen_port), timeout=2).close()


async def test_a_worker_that_cannot_start_is_the_supervisor_s_error(tmp_path: Path) -> None:
    (tmp_path / "token.key").write_text("changeme\n")
    config = _write(tmp_path, auth={"token": {"secret_file": "token.key"}})
    before = set(os.listdir("/proc"))
    with pytest.raises(ValueError, match=r"token\.key"):
        await asyncio.wait_for(supervise(config), 60)
    children = [p for p in set(os.listdir("/proc")) - before if p.isdigit() and _alive(int(p))
                and Path(f"/proc/{p}/cmdline").read_bytes().find(b"proxy.server.workers") >= 0]
    assert children == []


async def test_a_port_in_use_stops_start_up_before_any_worker(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        config = _write(tmp_path, listen=f"127.0.0.1:{taken.getsockname()[1]}")
        with pytest.raises(OSError, match="in use"):
            await supervise(config)
