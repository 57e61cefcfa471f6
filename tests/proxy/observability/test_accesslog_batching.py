"""Batched access-log output (one write per loop turn), and the cheaper renderers writing the same bytes.

The renderers are compared with the implementation they replaced (kept
below as the reference, verbatim but for names) over awkward requests:
anonymous, unicode, quotes and control characters, the token endpoint's
query, HTTP/1.0, an unknown peer, counted and uncounted bodies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiohttp import HttpVersion10, web
from aiohttp.test_utils import make_mocked_request
from prometheus_client import generate_latest

from auth.access import Action
from auth.routes import Route
from proxy.http.keys import CLIENT, ROUTE, USER
from proxy.http.runtime import Stats
from proxy.observability.accesslog import AccessSink, _clean, combined, json_line, logged_path
from proxy.observability.bodybytes import BODY_SENT, BodyCount, body_bytes
from proxy.observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[3]


# --- the reference: the renderers as they were before they were made cheaper (issue 15) ---

def _old_fields(request: web.BaseRequest, response: web.StreamResponse, seconds: float) -> dict[str, object]:
    version = request.version
    return {
        "remote": request.get(CLIENT) or request.remote or "-",
        "user": request.get(USER) or None,
        "method": request.method,
        "path": logged_path(request),
        "protocol": f"HTTP/{version.major}.{version.minor}",
        "status": response.status,
        "bytes_out": body_bytes(request, response),
        "bytes_in": request.content.total_bytes,
        "referer": request.headers.get("Referer"),
        "user_agent": request.headers.get("User-Agent"),
        "duration_ms": round(seconds * 1000, 1),
    }


def _old_combined(f: dict[str, object], now: float) -> str:
    stamp = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(int(now)))
    request_line = _clean(f"{f['method']} {f['path']} {f['protocol']}")
    return (
        f"{f['remote']} - {_clean(str(f['user'])) if f['user'] else '-'} [{stamp}] \"{request_line}\" "
        f"{f['status']} {f['bytes_out'] or '-'} \"{_clean(str(f['referer'] or '-'))}\" "
        f"\"{_clean(str(f['user_agent'] or '-'))}\" {f['duration_ms']}ms"
    )


def _old_json(f: dict[str, object], now: float) -> str:
    millis = int(now * 1000)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(millis // 1000)) + f".{millis % 1000:03d}Z"
    return json.dumps({"time": stamp, **f}, separators=(",", ":"))


def _request(method: str, path: str, headers: dict[str, str] | None = None, *, route: Route | None = None,
             user: str | None = None, client: str | None = None, sent: int | None = None, received: int = 0,
             **kwargs: Any) -> web.BaseRequest:
    request = make_mocked_request(method, path, headers=headers or {},
                                  payload=SimpleNamespace(total_bytes=received), **kwargs)  # type: ignore[arg-type]
    for key, value in ((ROUTE, route), (USER, user), (CLIENT, client)):
        if value is not None:
            request[key] = value  # type: ignore[index]
    if sent is not None:
        count = BodyCount()
        count.add(sent, sent)
        request[BODY_SENT] = count
    return request


MANIFEST = Route("manifest", "team/app", Action.PULL)
TOKEN = Route("token", None, Action.PULL)
CASES = [
    (_request("HEAD", "/v2/team/app/manifests/latest", {"User-Agent": "docker/27.3.1"}, route=MANIFEST,
              user="mark", client="192.0.2.10"), web.StreamResponse(status=200), 0.0012),
    (_request("GET", "/v2/team/app/blobs/x", route=MANIFEST, sent=12292, client="2001:db8::1"),
     web.StreamResponse(status=200), 1.25),
    (_request("GET", "/v2/team/app/blobs/x", {"Referer": "", "User-Agent": ""}, user=""),  # empty, not absent
     web.StreamResponse(status=200), 0.0),  # nobody counted the body: unknown
    (_request("PUT", "/v2/team/app/blobs/uploads/u?digest=sha256:0", {"Referer": 'https://x/"q"\\'},
              user='ro"bot\x00', received=7, sent=0), web.StreamResponse(status=201), 0.00004),
    (_request("GET", "/token?service=t&password=secret", {"User-Agent": "ünïcødé \u2028 \t agent"},
              route=TOKEN, sent=900), web.StreamResponse(status=200), 3.14159),
    (_request("GET", "/nowhere?q=1", version=HttpVersion10), web.StreamResponse(status=404), 12345.678),
    (_request("POST", "/v2/team/app/blobs/uploads/", {"Authorization": "Basic x"}, client="198.51.100.7",
              sent=120), web.StreamResponse(status=401), 0.05),
    (_request("GET", "/v2/\u00e9t\u00e9/manifests/\x7f", user="robot$ci", sent=5), web.StreamResponse(status=502),
     30.0),
]
NOWS = [0.0, 1796224445.1239, 1796224445.9999, time.time()]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_combined_and_json_write_exactly_what_they_wrote_before(case: int) -> None:
    request, response, seconds = CASES[case]
    for now in NOWS:
        fields = _old_fields(request, response, seconds)
        user = request.get(USER)
        assert combined(request, response, seconds, user, now) == _old_combined(fields, now)
        assert json_line(request, response, seconds, user, now) == _old_json(fields, now)


def test_metrics_series_are_made_as_before_byte_counters_only_once_bytes_flow() -> None:
    metrics = Metrics(Stats())
    for request, response, seconds in CASES:
        metrics.observe(request, response, seconds, request.get(USER))
    text = generate_latest(metrics.registry).decode()
    assert 'registry_auth_proxy_requests_total{action="pull",status="200",user="person"} 1.0' in text
    assert 'registry_auth_proxy_requests_total{action="token",status="200",user="anonymous"} 1.0' in text
    assert 'registry_auth_proxy_requests_total{action="push",status="401",user="anonymous"} 1.0' in text
    assert 'registry_auth_proxy_requests_total{action="other",status="404",user="anonymous"} 1.0' in text
    assert 'registry_auth_proxy_requests_total{action="pull",status="502",user="robot"} 1.0' in text
    assert 'registry_auth_proxy_received_bytes_total{action="push"} 7.0' in text
    assert 'registry_auth_proxy_received_bytes_total{action="pull"}' not in text  # never any: no series
    assert 'registry_auth_proxy_sent_bytes_total{action="pull"} 12297.0' in text  # 12292 + the 502's 5
    assert 'registry_auth_proxy_sent_bytes_total{action="push"} 120.0' in text  # the 201 sent none
    assert 'registry_auth_proxy_auth_failures_total{status="401"} 1.0' in text
    assert 'registry_auth_proxy_auth_failures_total{status="403"} 0.0' in text
    assert 'registry_auth_proxy_backend_errors_total{status="502"} 1.0' in text
    assert 'registry_auth_proxy_request_duration_seconds_bucket{action="pull",le="0.005"} 2.0' in text  # 1.2 ms, 0


# --- batching ---

async def test_a_loop_turn_of_lines_is_written_at_its_end_in_order_and_none_lost(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    sink = AccessSink(path)
    try:
        for i in range(5000):  # ~5000 requests finishing in one turn; > FLUSH_AT, so some go early
            sink.write(f"line {i:05d} " + "x" * 40)
        early = path.read_text().splitlines()
        assert 0 < len(early) < 5000  # written in bulk past FLUSH_AT, not line by line, nor all at the end
        await asyncio.sleep(0)  # the turn ends
        lines = path.read_text().splitlines()
        assert lines == [f"line {i:05d} " + "x" * 40 for i in range(5000)]
    finally:
        sink.close()


async def test_one_write_per_turn_and_pipe_writes_are_whole_lines_of_at_most_pipe_buf(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    writes: list[str] = []
    monkeypatch.setattr(sys, "stdout", SimpleNamespace(write=writes.append, flush=lambda: None))
    sink = AccessSink(None)
    for i in range(20):
        sink.write(f"small {i}")
    assert writes == []  # not yet: at the end of the turn
    await asyncio.sleep(0)
    assert writes == ["".join(f"small {i}\n" for i in range(20))]  # one write for the turn
    writes.clear()
    long_lines = [f"{i:03d} " + "é" * 700 for i in range(30)]  # 1404 bytes, 704 characters each
    for line in long_lines:
        sink.write(line)
    sink.write("z" * 9000)  # longer than PIPE_BUF: alone, as before batching
    await asyncio.sleep(0)
    assert "".join(writes).splitlines() == [*long_lines, "z" * 9000]
    assert all(piece.endswith("\n") for piece in writes)
    assert [len(piece.encode()) <= 4096 for piece in writes[:-1]] == [True] * (len(writes) - 1)
    assert 10 <= len(writes) < 31  # two lines a piece (2 x 1405 bytes), the long one alone
    sink.close()


async def test_reopen_flushes_to_the_old_file_first(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    sink = AccessSink(path)
    sink.write("before rotation")
    path.rename(tmp_path / "access.log.1")  # logrotate, then SIGHUP, all in one turn
    sink.reopen()
    sink.write("after rotation")
    sink.close()  # and close, in the same turn
    assert (tmp_path / "access.log.1").read_text() == "before rotation\n"
    assert path.read_text() == "after rotation\n"


def test_outside_a_loop_lines_are_written_at_once(tmp_path: Path) -> None:
    sink = AccessSink(tmp_path / "access.log")
    sink.write("no loop")
    assert (tmp_path / "access.log").read_text() == "no loop\n"
    sink.close()


async def test_a_full_disk_is_logged_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    sink = AccessSink(Path("/dev/full"))
    with caplog.at_level(logging.ERROR, logger="proxy.observability.accesslog"):
        sink.write("lost")
        sink.write("lost too")
        await asyncio.sleep(0)  # the flush at the end of the turn: ENOSPC, not an exception
        sink.write("x" * (AccessSink.FLUSH_AT + 1))  # a flush within write(): the request is not failed
        sink.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("/dev/full" in m and "2 lines lost" in m for m in messages), messages
    assert any("1 lines lost" in m for m in messages), messages


def test_lines_left_at_exit_are_written(tmp_path: Path) -> None:
    """The loop stops before the turn's flush runs and nobody closes the sink: the atexit hook writes it."""
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from proxy.observability.accesslog import AccessSink\n"
        "sink = AccessSink(Path(sys.argv[1]))\n"
        "loop = asyncio.new_event_loop()\n"
        "def last() -> None:\n"
        "    sink.write('the last line')\n"
        "    loop.stop()\n"
        "loop.call_soon(last)\n"
        "loop.run_forever()\n"
        "assert Path(sys.argv[1]).read_text() == '', 'written before exit: the test proves nothing'\n"
    )
    path = tmp_path / "access.log"
    subprocess.run([sys.executable, "-c", script, str(path)], cwd=ROOT, check=True, timeout=60)
    assert path.read_text() == "the last line\n"
