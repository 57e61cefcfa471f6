"""``proxy.ops.gc`` without a running proxy: which admin URLs are polled, and how the wait ends.

``/inflight`` is answered by a tiny ``http.server`` in a thread, so the
drain logic is tested on its own, in about a second per case.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from proxy.config import Config, parse_config
from proxy.ops import gc


def config_with(tmp_path: Path, admin: object) -> Config:
    return parse_config({"admin": admin}, tmp_path / "proxy.yml")


@pytest.mark.parametrize(("listen", "url"), [
    ("127.0.0.1:9102", "http://127.0.0.1:9102"),
    ("0.0.0.0:9102", "http://127.0.0.1:9102"),  # a wildcard is reached on loopback
    ("[::]:9103", "http://127.0.0.1:9103"),
    ("[::1]:9104", "http://[::1]:9104"),  # IPv6 literal: bracketed in the URL
    ("admin.internal:9105", "http://admin.internal:9105"),
])
def test_admin_urls_from_the_config(tmp_path: Path, listen: str, url: str) -> None:
    assert gc.admin_urls(config_with(tmp_path, {"listen": listen}), []) == [url]


def test_admin_urls_off_is_empty_and_explicit_urls_win(tmp_path: Path) -> None:
    assert gc.admin_urls(config_with(tmp_path, "off"), []) == []
    explicit = ["http://10.0.0.1:9102/", "http://[fd00::2]:9102"]
    assert gc.admin_urls(config_with(tmp_path, "off"), explicit) == ["http://10.0.0.1:9102", "http://[fd00::2]:9102"]
    assert gc.admin_urls(config_with(tmp_path, {"listen": "0.0.0.0:1"}), explicit[:1]) == ["http://10.0.0.1:9102"]


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settle time for replicas to see the flag (1 s) is not what these tests are about."""
    monkeypatch.setattr(gc, "INTERVAL", 0.01)


class Inflight(ThreadingHTTPServer):
    """``GET /inflight`` answers ``{"writes": N}``, N taken from ``counts`` in turn (the last one repeats)."""

    daemon_threads = True

    def __init__(self, counts: list[int]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.counts = counts
        self.asked = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Inflight

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path != "/inflight":
            self.send_error(404)
            return
        n = self.server.counts[min(self.server.asked, len(self.server.counts) - 1)]
        self.server.asked += 1
        body = json.dumps({"writes": n}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def inflight() -> Iterator[Callable[[list[int]], Inflight]]:
    started: list[Inflight] = []

    def start(counts: list[int]) -> Inflight:
        server = Inflight(counts)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def test_writes_in_flight_reads_the_count_or_none(inflight) -> None:
    server = inflight([3])
    assert gc.writes_in_flight(server.url) == 3
    assert gc.writes_in_flight(server.url + "/nope") is None  # a 404 is "does not answer"
    server.shutdown()
    server.server_close()
    assert gc.writes_in_flight(server.url) is None


def test_wait_ends_when_the_last_write_finishes(inflight, capsys) -> None:
    server = inflight([2, 1, 0])
    assert gc.wait_for_writes([server.url], timeout=10) is True
    assert server.asked == 3
    assert capsys.readouterr().err == ""


def test_wait_gives_up_after_the_timeout(inflight, capsys) -> None:
    server = inflight([1])
    assert gc.wait_for_writes([server.url], timeout=0.3) is False
    assert "gc: writes still in flight after 0.3s" in capsys.readouterr().err


def test_a_proxy_that_does_not_answer_stops_gc_unless_forced(inflight, capsys) -> None:
    dead = inflight([0])
    dead.shutdown()
    dead.server_close()
    assert gc.wait_for_writes([inflight([0]).url, dead.url], timeout=10) is False
    err = capsys.readouterr().err
    assert f"gc: {dead.url}/inflight does not answer" in err and "--force" in err


def test_forced_gc_warns_about_a_proxy_that_does_not_answer_and_does_not_wait_for_it(inflight, capsys) -> None:
    busy_then_idle = inflight([1, 0])
    dead = inflight([0])
    dead.shutdown()
    dead.server_close()
    assert gc.wait_for_writes([busy_then_idle.url, dead.url], timeout=10, force=True) is True
    err = capsys.readouterr().err
    assert f"gc: warning: {dead.url}/inflight does not answer; --force" in err
    assert err.count("does not answer") == 1  # dropped after the first round


def test_run_switches_maintenance_off_after_the_command(tmp_path: Path, inflight, capfd) -> None:
    config = parse_config({}, tmp_path / "proxy.yml")
    server = inflight([0])
    seen = tmp_path / "seen"
    code = gc.run(config, f"test -e {config.maintenance_file} && touch {seen}; exit 3", 5, [server.url])
    out = capfd.readouterr().out
    assert code == 3 and seen.exists() and not config.maintenance_file.exists()
    assert "gc: command exited 3" in out and "gc: maintenance off; writes accepted again" in out


def test_run_leaves_maintenance_on_if_it_was_on(tmp_path: Path, inflight, capfd) -> None:
    config = parse_config({}, tmp_path / "proxy.yml")
    config.maintenance_file.write_text("disk swap\n")
    code = gc.run(config, "true", 5, [inflight([0]).url])
    assert code == 0 and config.maintenance_file.read_text() == "disk swap\n"
    assert "leaving it on" in capfd.readouterr().out
