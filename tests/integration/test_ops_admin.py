"""The admin listener (metrics, health, in-flight) and the access-log formats, on a real proxy."""

from __future__ import annotations

import json
import signal
import socket
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.httpclient import Client, basic
from tests.support.tinyimage import push_tiny

MARK = basic("mark", "pusherpwd")


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def samples(admin_url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, body = get(admin_url + "/metrics")
    assert status == 200
    out = {}
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(found: dict, name: str, **labels: str) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def eventually(check, what: str) -> None:
    """The access-log hook runs just after the last byte is sent: give it a moment."""
    deadline = time.monotonic() + 15
    while not check():
        assert time.monotonic() < deadline, f"{what} not seen within 15 s"
        time.sleep(0.05)


def test_metrics_count_requests_bytes_and_failures(proxy_factory, tls_files):
    proxy = proxy_factory()
    client = Client(proxy.url, tls_files.ca_cert)
    assert client.request("GET", "/v2/").status == 401
    assert client.request("GET", "/v2/", [("Authorization", MARK)]).status == 200
    assert client.request("GET", "/v2/", [("Authorization", basic("mark", "nope"))]).status == 401
    assert client.request("POST", "/v2/met/app/blobs/uploads/", [("Authorization", basic("reader", "readerpwd"))],
                          body=b"").status == 403
    push_tiny(client, "met/app", "v1", auth=MARK, layer_size=5000)
    assert client.request("GET", "/v2/met/app/tags/list").status == 200
    p = "registry_auth_proxy_"
    eventually(lambda: value(samples(proxy.admin_url), p + "requests_total", action="pull", status="200",
                             user="anonymous") >= 1, "the last request in the metrics")
    m = samples(proxy.admin_url)
    assert value(m, p + "requests_total", action="pull", status="401", user="anonymous") >= 1
    assert value(m, p + "requests_total", action="pull", status="200", user="person") >= 1
    assert value(m, p + "requests_total", action="push", status="201", user="person") >= 3
    assert value(m, p + "requests_total", action="pull", status="200", user="anonymous") >= 1
    assert value(m, p + "auth_failures_total", status="401") >= 1
    assert value(m, p + "auth_failures_total", status="403") >= 1
    assert value(m, p + "received_bytes_total", action="push") >= 5000
    assert value(m, p + "sent_bytes_total", action="pull") > 0
    assert value(m, p + "request_duration_seconds_count", action="push") >= 3
    assert value(m, p + "inflight_writes") == 0
    assert value(m, p + "throttled_requests_total") == 0
    assert (p + "inflight_requests", ()) in m
    assert client.request("GET", "/metrics").status == 404  # never on the public port
    status, body = get(proxy.admin_url + "/inflight")
    assert status == 200 and json.loads(body) == {"writes": 0, "requests": 0}


def test_backend_errors_and_readiness(proxy_factory, registry):
    proxy = proxy_factory(tls=False)
    assert get(proxy.admin_url + "/healthz")[0] == 200
    status, body = get(proxy.admin_url + "/readyz")
    assert status == 200 and json.loads(body)["backend_status"] == 200
    with registry.stopped():
        assert get(proxy.admin_url + "/readyz")[0] == 503
        assert get(proxy.admin_url + "/healthz")[0] == 200
        assert Client(proxy.url).request("GET", "/v2/_catalog").status == 502
    assert get(proxy.admin_url + "/readyz")[0] == 200
    eventually(lambda: value(samples(proxy.admin_url), "registry_auth_proxy_backend_errors_total", status="502") >= 1,
               "the 502 in the metrics")


def test_busy_admin_port_stops_start_up_with_a_clear_error(proxy_factory):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        with pytest.raises(RuntimeError) as err:
            proxy_factory(overrides={"admin": {"listen": f"127.0.0.1:{port}"}})
    assert f"admin.listen 127.0.0.1:{port}" in str(err.value)


def test_admin_off(proxy_factory, tls_files):
    proxy = proxy_factory(overrides={"admin": {"listen": "off"}})
    assert proxy.admin_url is None
    assert Client(proxy.url, tls_files.ca_cert).request("GET", "/v2/_catalog").status == 200


def test_json_log_to_a_file_reopened_on_sighup(proxy_factory, tls_files):
    proxy = proxy_factory(overrides={"log": {"format": "json", "file": "access.log"}})
    client = Client(proxy.url, tls_files.ca_cert)
    client.request("GET", "/v2/", [("Authorization", MARK), ("User-Agent", 'evil"agent')])
    client.request("GET", "/token?service=x&scope=repository:a:pull&secret=s3cr3t",
                   [("Authorization", basic("mark", "pusherpwd"))])
    log = proxy.workdir / "access.log"
    eventually(lambda: log.exists() and log.read_text().count("\n") >= 2, "two access lines")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert lines[0]["user"] == "mark" and lines[0]["status"] == 200 and lines[0]["path"] == "/v2/"
    assert lines[0]["user_agent"] == 'evil"agent' and lines[0]["method"] == "GET"
    assert lines[1]["path"] == "/token"  # the token endpoint: path only
    text = log.read_text()
    for secret in ("pusherpwd", "s3cr3t", MARK.split()[1]):
        assert secret not in text and secret not in proxy.log_text()
    log.rename(proxy.workdir / "access.log.1")
    proxy.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 15
    while not log.exists():
        assert time.monotonic() < deadline, "access log not reopened within 15 s"
        client.request("GET", "/v2/_catalog")
        time.sleep(0.1)
    eventually(lambda: '"path":"/v2/_catalog"' in log.read_text(), "a line in the reopened file")


def test_combined_format_escapes_quotes(proxy_factory, tls_files):
    proxy = proxy_factory()
    Client(proxy.url, tls_files.ca_cert).request("GET", "/v2/_catalog", [("User-Agent", 'a" 200 "x')])
    eventually(lambda: '"GET /v2/_catalog HTTP/1.1" 200 ' in proxy.log_text(), "the combined line")
    assert '"a\\" 200 \\"x"' in proxy.log_text()
