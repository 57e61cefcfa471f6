"""``registry catalog`` follows ``Link`` pages on the ``--url`` origin and nowhere else.

Two plain-HTTP servers in threads: the "registry" serves ``/v2/_catalog``
pages whose ``Link`` headers point where each test says; the "foreign" one
records every request it gets. Credentials (Basic, or a Bearer token) must
never reach the foreign one, and the walk must say which origin it refused.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from proxy.cli import main
from proxy.cli.registry_client import RegistryClient, RegistryError, origin

BASIC = "Basic " + base64.b64encode(b"mark:pw").decode()
TOKEN = "t0ken"

Page = tuple[list[str], str | None]  # repositories, Link target


class Server(ThreadingHTTPServer):
    """Answers ``/v2/_catalog`` from ``pages`` (keyed by the request path) and records every request."""

    daemon_threads = True

    def __init__(self, auth: str | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.auth = auth  # None, "basic" or "bearer"
        self.pages: dict[str, Page] = {}
        self.seen: list[tuple[str, str | None]] = []  # (path, Authorization)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        for name, value in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        auth = self.headers.get("Authorization")
        self.server.seen.append((self.path, auth))
        if self.path.startswith("/token"):
            self._send(200 if auth == BASIC else 401, {"token": TOKEN})
            return
        wanted = {"basic": BASIC, "bearer": "Bearer " + TOKEN}.get(self.server.auth or "")
        if wanted and auth != wanted:
            challenge = (f'Bearer realm="{self.server.url}/token",service="test"' if self.server.auth == "bearer"
                         else 'Basic realm="test"')
            self._send(401, {"errors": [{"code": "UNAUTHORIZED", "message": "log in"}]},
                       {"WWW-Authenticate": challenge})
            return
        if self.path not in self.server.pages:
            self._send(404, {"errors": [{"code": "NOT_FOUND", "message": self.path}]})
            return
        repos, link = self.server.pages[self.path]
        self._send(200, {"repositories": repos}, {"Link": f'<{link}>; rel="next"'} if link else {})


@pytest.fixture
def servers() -> Iterator[Callable[[str | None], tuple[Server, Server]]]:
    """Start a registry (with the given auth) and a foreign server; both stop after the test."""
    started: list[Server] = []

    def start(auth: str | None) -> tuple[Server, Server]:
        pair = Server(auth), Server(auth)
        for server in pair:
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
            started.append(server)
        return pair

    yield start
    for server in started:
        server.shutdown()
        server.server_close()


def catalog(url: str, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str, str]:
    code = main(["registry", "catalog", "--url", url, "--page-size", "2", *extra])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("auth", [None, "basic", "bearer"])
def test_relative_and_same_origin_links_are_followed(servers, capsys, monkeypatch, auth: str | None) -> None:
    registry, foreign = servers(auth)
    monkeypatch.setenv("RAP_PASSWORD", "pw")
    registry.pages = {
        "/v2/_catalog?n=2": (["a", "b"], "/v2/_catalog?last=b&n=2"),  # what distribution sends
        "/v2/_catalog?last=b&n=2": (["c", "d"], f"{registry.url}/v2/_catalog?last=d&n=2"),  # absolute, same origin
        "/v2/_catalog?last=d&n=2": (["e", "f"], "_catalog?last=f&n=2"),  # relative to the page (RFC 8288)
        "/v2/_catalog?last=f&n=2": (["g"], None),
    }
    code, out, err = catalog(registry.url, capsys, *(["--user", "mark"] if auth else []))
    assert (code, out.split()) == (0, list("abcdefg")), err
    assert foreign.seen == []


@pytest.mark.parametrize("auth", [None, "basic", "bearer"])
@pytest.mark.parametrize("where", ["other port", "other host", "other scheme"])
def test_a_link_to_another_origin_is_never_requested(servers, capsys, monkeypatch, auth: str | None,
                                                     where: str) -> None:
    registry, foreign = servers(auth)
    monkeypatch.setenv("RAP_PASSWORD", "pw")
    port = registry.server_address[1]
    target = {
        "other port": f"{foreign.url}/v2/_catalog?last=b&n=2",
        "other host": f"http://localhost:{foreign.server_address[1]}/v2/_catalog?last=b&n=2",
        "other scheme": f"https://127.0.0.1:{port}/v2/_catalog?last=b&n=2",
    }[where]
    registry.pages = {"/v2/_catalog?n=2": (["a", "b"], target)}
    code, out, err = catalog(registry.url, capsys, *(["--user", "mark"] if auth else []))
    foreign_origin = target.split("/v2/")[0]
    assert foreign.seen == []  # not even without credentials
    assert code == 1 and out == ""
    assert f"registry: refusing to follow a link to {foreign_origin}" in err, err
    assert [path for path, _ in registry.seen if "last=" in path] == []


def test_scheme_relative_link_to_another_host_is_refused(servers, capsys) -> None:
    registry, foreign = servers(None)
    registry.pages = {"/v2/_catalog?n=2": (["a"], f"//localhost:{foreign.server_address[1]}/v2/_catalog?n=2")}
    code, _, err = catalog(registry.url, capsys)
    assert code == 1 and f"http://localhost:{foreign.server_address[1]}" in err
    assert foreign.seen == []


def test_request_refuses_a_foreign_full_url_before_sending(servers) -> None:
    registry, foreign = servers("basic")
    client = RegistryClient(registry.url, "mark", "pw")
    with pytest.raises(RegistryError, match=f"127.0.0.1:{foreign.server_address[1]}"):
        client.request("GET", foreign.url + "/v2/_catalog", "registry:catalog:*")
    assert foreign.seen == [] and registry.seen == []


def test_origin_fills_in_default_ports_and_ignores_case() -> None:
    assert origin("https://Registry.Example.org/v2/") == origin("https://registry.example.org:443")
    assert origin("http://h") == ("http", "h", 80)
    assert origin("http://h:80") != origin("https://h:80")
    with pytest.raises(RegistryError):
        origin("http://h:port/")
