"""Start-up that fails half-way closes everything it had opened; a served proxy drains and stops.

In-process: ``serve(config)`` runs in the test's loop. A leaked aiohttp
client session reports itself through the loop's exception handler
("Unclosed client session") when collected, so the tests install a handler
that records it and collect garbage before looking.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest

from proxy.config import Config, parse_config
from proxy.http import runtime as runtime_module
from proxy.server import serve


@pytest.fixture
def taken_port() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield s.getsockname()[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, **extra: Any) -> Config:
    hashed = bcrypt.hashpw(b"pusherpwd", bcrypt.gensalt(4)).decode()
    (tmp_path / "users.htpasswd").write_text(f"mark:{hashed}\n")
    data: dict[str, Any] = {"listen": f"127.0.0.1:{_free_port()}", "tls": "off", "admin": "off",
                            "backend": "http://127.0.0.1:9", "log": {"access": False}}
    data.update(extra)
    return parse_config(data, tmp_path / "proxy.yml")


class Leaks:
    """Records unclosed sessions and closes of the password pool."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.reports: list[str] = []
        self.verifiers: list[Any] = []
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(lambda _loop, context: self.reports.append(str(context.get("message"))))
        leaks = self

        class RecordingVerifier(runtime_module.Verifier):
            closed = False

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                leaks.verifiers.append(self)

            def close(self) -> None:
                self.closed = True
                super().close()

        monkeypatch.setattr(runtime_module, "Verifier", RecordingVerifier)

    def check(self) -> None:
        gc.collect()
        assert not [r for r in self.reports if "Unclosed" in r], self.reports
        assert all(v.closed for v in self.verifiers), "a password pool was left open"


@pytest.mark.parametrize("where", ["listen", "admin.listen"])
async def test_port_in_use_leaks_nothing(tmp_path: Path, taken_port: int, where: str,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    leaks = Leaks(monkeypatch)
    extra = {"listen": f"127.0.0.1:{taken_port}"} if where == "listen" else \
        {"admin": {"listen": f"127.0.0.1:{taken_port}"}}
    with pytest.raises(OSError, match="in use" if where == "listen" else "admin.listen"):
        await serve(_config(tmp_path, **extra))
    leaks.check()
    if where == "listen":
        assert len(leaks.verifiers) == 1  # the runtime was built before the listener failed


async def test_unusable_token_key_leaks_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    leaks = Leaks(monkeypatch)
    (tmp_path / "token.key").write_bytes(b"0123456789")
    with pytest.raises(ValueError, match="at least 32"):
        await serve(_config(tmp_path, auth={"token": {"secret_file": "token.key"}}))
    leaks.check()


async def test_sigterm_stops_and_closes_everything(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    leaks = Leaks(monkeypatch)
    config = _config(tmp_path)
    task = asyncio.ensure_future(serve(config))
    for _ in range(100):
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", config.listen_port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.05)
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.wait_for(task, 10)
    leaks.check()
    assert len(leaks.verifiers) == 1
