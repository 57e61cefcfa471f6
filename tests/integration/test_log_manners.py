"""Logs and protocol manners against the real registry, over real TLS, read from the real proxy's log.

* a backend outage: one WARNING with the address and the errno when it goes,
  one INFO when it is back, not a line per request;
* plain HTTP sent to the TLS port: a text 400 saying to use https, one log
  line naming the client, never the request;
* access-log bytes are body bytes (Apache's ``%b``): ``-``/0 for an empty
  201 and for HEAD, the exact size for a blob GET; JSON times are RFC 3339.
"""

from __future__ import annotations

import hashlib
import json
import re
import socket
import time
from collections.abc import Callable

import pytest

from tests.support.httpclient import Client, basic, put_blob
from tests.support.rawhttp import read_all

MARK = basic("mark", "pusherpwd")
RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 15) -> None:
    """Log lines are written as answers go out; wait generously, never assert on timing."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def _lines(proxy, text: str) -> list[str]:  # type: ignore[no-untyped-def]
    return [line for line in proxy.log_text().splitlines() if text in line]


def test_a_backend_outage_is_logged_once_when_it_goes_and_once_when_it_comes_back(
        proxy_factory, tls_files, registry):
    proxy = proxy_factory()
    client = Client(proxy.url, tls_files.ca_cert, timeout=30)
    down = f"backend {registry.url} unreachable: "
    with registry.stopped():
        for _ in range(20):
            reply = client.request("GET", "/v2/logs/outage/manifests/latest")
            assert reply.status == 502 and reply.json()["errors"][0]["code"] == "UNAVAILABLE"
        _wait_for(lambda: len(_lines(proxy, down)) >= 1, "the unreachable line")
        (line,) = _lines(proxy, "unreachable")
        assert " WARNING " in line and line.endswith(down + "[Errno 111] Connection refused"), line
    assert client.request("GET", "/v2/logs/outage/manifests/latest").status == 404  # forwarded again
    assert client.request("GET", "/v2/logs/outage/manifests/latest").status == 404
    _wait_for(lambda: len(_lines(proxy, "reachable again")) >= 1, "the reachable-again line")
    (back,) = _lines(proxy, "reachable again")
    assert " INFO " in back and f"backend {registry.url} reachable again after " in back
    assert "(20 requests failed meanwhile)" in back
    assert len(_lines(proxy, "unreachable")) == 1
    assert not _lines(proxy, "ClientConnectorError") and not _lines(proxy, "Traceback")


@pytest.mark.parametrize("proxy_protocol", [False, True], ids=["direct", "proxy_protocol"])
def test_plain_http_on_the_tls_port_gets_a_text_400_and_one_log_line(proxy_factory, proxy_protocol):
    overrides = {"proxy_protocol": {"trusted": ["127.0.0.6/32"]}} if proxy_protocol else None
    proxy = proxy_factory(overrides=overrides)
    request = (f"GET /v2/ HTTP/1.1\r\nHost: {proxy.host_port}\r\nAuthorization: {MARK}\r\n"
               "Connection: close\r\n\r\n").encode()
    preamble = b"PROXY TCP4 192.0.2.61 127.0.0.1 40000 443\r\n" if proxy_protocol else b""
    with socket.create_connection((proxy.host, proxy.port), timeout=15,
                                  source_address=("127.0.0.6" if proxy_protocol else "127.0.0.2", 0)) as sock:
        sock.sendall(preamble + request)
        answer = read_all(sock)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"Content-Type: text/plain" in head
    assert b"https://" in body and MARK.split()[1].encode() not in answer
    _wait_for(lambda: len(_lines(proxy, "plain HTTP")) >= 1, "the plain-HTTP line")
    time.sleep(0.5)  # a second line, if there were one, would be written by now
    (line,) = _lines(proxy, "plain HTTP")
    client = "192.0.2.61" if proxy_protocol else "127.0.0.2"
    assert f": {client}: plain HTTP request on the HTTPS port" in line
    assert MARK.split()[1] not in proxy.log_text() and "GET /v2/ HTTP" not in line  # nothing of the request


def _access_combined(proxy, method: str, path: str) -> list[str]:  # type: ignore[no-untyped-def]
    return _lines(proxy, f'"{method} {path}')


def _access_json(proxy) -> list[dict]:  # type: ignore[no-untyped-def,type-arg]
    return [json.loads(line) for line in proxy.log_text().splitlines() if line.startswith("{")]


@pytest.mark.parametrize("fmt", ["combined", "json"])
def test_access_log_bytes_are_body_bytes(proxy_factory, tls_files, fmt):
    proxy = proxy_factory(overrides={"log": {"format": fmt}})
    client = Client(proxy.url, tls_files.ca_cert, timeout=30)
    data = hashlib.sha256(b"log manners").digest() * 1717 + b"odd"  # 54947 bytes
    repo = f"logs/manners-{fmt}"
    digest = put_blob(client, repo, data, MARK)  # POST 202 and PUT 201, both without a body
    blob = f"/v2/{repo}/blobs/{digest}"
    head = client.request("HEAD", blob, [("Authorization", MARK)])
    assert head.status == 200 and head.header("Content-Length") == str(len(data))
    got = client.request("GET", blob, [("Authorization", MARK)])
    assert got.status == 200 and got.body == data
    if fmt == "combined":
        _wait_for(lambda: len(_access_combined(proxy, "GET", blob)) == 1, "the GET's access line")
        (put,) = _access_combined(proxy, "PUT", f"/v2/{repo}/blobs/uploads/")
        (post,) = _access_combined(proxy, "POST", f"/v2/{repo}/blobs/uploads/")
        (head_line,) = _access_combined(proxy, "HEAD", blob)
        (get_line,) = _access_combined(proxy, "GET", blob)
        assert re.search(r'" 201 - "', put), put  # was ~400: the headers
        assert re.search(r'" 202 - "', post), post
        assert re.search(r'" 200 - "', head_line), head_line  # a Content-Length, but no body sent
        assert f'" 200 {len(data)} "' in get_line, get_line
        return
    _wait_for(lambda: any(e["method"] == "GET" and e["path"] == blob for e in _access_json(proxy)),
              "the GET's access line")
    entries = _access_json(proxy)

    def one(method: str, path: str) -> dict:  # type: ignore[type-arg]
        (entry,) = [e for e in entries if e["method"] == method and e["path"].startswith(path)]
        return entry

    assert (one("PUT", f"/v2/{repo}/blobs/uploads/")["status"], one("PUT", f"/v2/{repo}/blobs/uploads/")
            ["bytes_out"]) == (201, 0)
    assert (one("POST", f"/v2/{repo}/blobs/uploads/")["status"], one("POST", f"/v2/{repo}/blobs/uploads/")
            ["bytes_out"]) == (202, 0)
    assert one("HEAD", blob)["bytes_out"] == 0
    assert one("GET", blob)["bytes_out"] == len(data)
    for entry in entries:
        assert RFC3339_MS.match(entry["time"]), entry["time"]
