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
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
from aiohttp import web

from proxy.config import Config, Limits, parse_config
from proxy.http import runtime as runtime_module
from proxy.server import serve
from proxy.server.aiohttp_seams import GuardedSite


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


# -- the drain: a body still arriving is read; idle connections close at once --------------------------

UPLOAD = 4 << 20
PIECE = 64 << 10


async def _count_body(request: web.Request) -> web.Response:
    """A handler that reads its body slowly, so the parser's flow control pauses and resumes during the drain."""
    got = 0
    while chunk := await request.content.read(PIECE):
        got += len(chunk)
        await asyncio.sleep(0.005)
    return web.Response(text=f"ok {got}")


@pytest.fixture
async def draining() -> AsyncIterator[tuple[web.AppRunner, GuardedSite]]:
    """Our listener in front of ``_count_body``, built as ``serve`` builds it; ``runner.cleanup()`` is its drain."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", _count_body)
    options = {"keepalive_timeout": 30.0, "read_bufsize": PIECE}
    runner = web.AppRunner(app, shutdown_timeout=30, **options)  # type: ignore[arg-type]
    await runner.setup()
    site = GuardedSite(runner, "127.0.0.1", 0, limits=Limits(header_timeout=30), handler_options=options)
    await site.start()
    yield runner, site
    await runner.cleanup()  # a no-op when the test drained it already


async def _refused(port: int) -> bool:
    try:
        _reader, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:  # refused; or reset: a connection caught in the closing listener's backlog
        return True
    writer.close()
    return False


def _frame(piece: bytes, chunked: bool) -> bytes:
    return b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece


@pytest.mark.parametrize("chunked", [False, True])
async def test_drain_reads_the_body_in_flight_and_closes_idle_connections(
    draining: tuple[web.AppRunner, GuardedSite], chunked: bool,
) -> None:
    runner, site = draining
    idle_reader, idle = await asyncio.open_connection("127.0.0.1", site.port)
    idle.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await asyncio.wait_for(idle_reader.readuntil(b"ok 0"), 5)).startswith(b"HTTP/1.1 200")
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
    framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % UPLOAD
    writer.write(b"PUT / HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n")
    pieces = [bytes([i % 251]) * PIECE for i in range(UPLOAD // PIECE)]
    for piece in pieces[:16]:  # 1 MiB before the drain
        writer.write(_frame(piece, chunked))
    await writer.drain()
    await asyncio.sleep(0.2)
    drain = asyncio.ensure_future(runner.cleanup())
    for _ in range(250):
        if await _refused(site.port):
            break
        await asyncio.sleep(0.02)
    else:
        raise AssertionError("the listener still accepts during the drain")
    assert await asyncio.wait_for(idle_reader.read(), 5) == b"", "an idle kept-alive connection stayed open"
    assert not drain.done()
    # the other 3 MiB only now, all at once: faster than the handler reads, so the parser pauses and resumes
    writer.write(b"".join(_frame(piece, chunked) for piece in pieces[16:]))
    await writer.drain()
    if chunked:
        writer.write(b"0\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), 10)  # the whole answer, then the close
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok %d" % UPLOAD), answer[:300]
    await asyncio.wait_for(drain, 10)  # ends with the upload, not at the 30 s shutdown_timeout
    writer.close()
    idle.close()


async def test_drain_serves_nothing_after_the_request_in_flight(
    draining: tuple[web.AppRunner, GuardedSite],
) -> None:
    runner, site = draining
    reader, writer = await asyncio.open_connection("127.0.0.1", site.port)
    writer.write(b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 8\r\n\r\nabcd")
    await asyncio.sleep(0.2)
    drain = asyncio.ensure_future(runner.cleanup())
    await asyncio.sleep(0.2)
    writer.write(b"efgh" + b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n")  # the rest, and a pipelined request
    answer = await asyncio.wait_for(reader.read(), 10)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok 8"), answer
    assert answer.count(b"HTTP/1.1 ") == 1
    await asyncio.wait_for(drain, 10)
    writer.close()
