"""The maintenance switch and ``gc --run`` against the real registry and its real garbage collector."""

from __future__ import annotations

import http.client
import os
import ssl
import subprocess
import sys
import time
from urllib.parse import urlsplit

from tests.support.httpclient import Client, basic
from tests.support.proxyproc import REPO_ROOT
from tests.support.tinyimage import push_tiny

MARK = basic("mark", "pusherpwd")
OCI = [("Accept", "application/vnd.oci.image.manifest.v1+json")]


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "proxy", *args], capture_output=True, text=True, env=env,
                          timeout=timeout, check=False)


def cli_bg(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "proxy", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)


def wait_for(check, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached within 15 s"
        time.sleep(0.05)


def test_switch_refuses_writes_keeps_reads_and_needs_no_restart(proxy_factory, tls_files):
    proxy = proxy_factory()
    client = Client(proxy.url, tls_files.ca_cert)
    push_tiny(client, "maint/app", "v1", auth=MARK)
    config = str(proxy.config_path)
    on = cli("maintenance", "on", "--config", config, "--reason", "disk swap")
    assert on.returncode == 0 and "maintenance: on" in on.stdout, on
    assert "on" in cli("maintenance", "status", "--config", config).stdout
    wait_for(lambda: client.request("POST", "/v2/maint/app/blobs/uploads/", [("Authorization", MARK)],
                                     body=b"").status == 423)
    refused = client.request("PUT", "/v2/maint/app/manifests/v2", [("Authorization", MARK)], body=b"{}")
    assert refused.status == 423 and refused.header("Retry-After")
    error = refused.json()["errors"][0]
    assert error["code"] == "DENIED" and "read-only for maintenance" in error["message"]
    assert "disk swap" in error["message"]
    assert client.request("DELETE", "/v2/maint/app/manifests/sha256:" + "0" * 64, [("Authorization", MARK)]).status \
        == 423
    assert client.request("GET", "/v2/maint/app/manifests/v1", OCI).status == 200  # reads go on
    assert client.request("GET", "/v2/maint/app/tags/list").status == 200
    off = cli("maintenance", "off", "--config", config)
    assert off.returncode == 0 and "maintenance: off" in off.stdout
    wait_for(lambda: client.request("POST", "/v2/maint/app/blobs/uploads/", [("Authorization", MARK)],
                                     body=b"").status == 202)


def test_gc_refuses_a_push_during_collection_and_leaves_no_corrupt_blob(proxy_factory, tls_files, registry):
    proxy = proxy_factory()
    client = Client(proxy.url, tls_files.ca_cert)
    push_tiny(client, "gc/app", "v1", auth=MARK)
    flag = proxy.workdir / "maintenance"
    gc = cli_bg("gc", "--config", str(proxy.config_path), "--timeout", "30",
                "--run", f"sleep 3; docker-registry garbage-collect {registry.config_path}")
    try:
        wait_for(flag.exists)
        wait_for(lambda: client.request("POST", "/v2/gc/app/blobs/uploads/", [("Authorization", MARK)],
                                         body=b"").status == 423)
        refused = client.request("PUT", "/v2/gc/app/manifests/v2", [("Authorization", MARK)], body=b"{}")
        assert refused.status == 423 and refused.header("Retry-After")
        assert client.request("GET", "/v2/gc/app/manifests/v1", OCI).status == 200
        out, _ = gc.communicate(timeout=120)
    finally:
        if gc.poll() is None:
            gc.kill()
    assert gc.returncode == 0, out
    assert "gc: running: sleep 3; docker-registry garbage-collect" in out
    assert "blobs marked" in out  # the collector's own report is shown
    assert "gc: command exited 0" in out and "maintenance off" in out
    assert not flag.exists()
    push_tiny(client, "gc/app", "v3", auth=MARK)  # writes work again at once
    checks = registry.blobs()
    assert checks and all(check.ok for check in checks), [c for c in checks if not c.ok]


def test_gc_turns_maintenance_off_when_the_command_fails(proxy_factory):
    proxy = proxy_factory(start=False)
    proxy.write_config()
    refused = cli("gc", "--config", str(proxy.config_path), "--run", "echo collecting; exit 3")
    assert refused.returncode == 1, refused  # the proxy does not answer: its writes cannot be seen
    assert "collecting" not in refused.stdout and "--force" in refused.stderr
    assert not (proxy.workdir / "maintenance").exists()
    result = cli("gc", "--force", "--config", str(proxy.config_path), "--run", "echo collecting; exit 3")
    assert result.returncode == 3, result
    assert "collecting" in result.stdout and "gc: command exited 3" in result.stdout
    assert "does not answer" in result.stderr  # the proxy is not running: said, forced
    assert not (proxy.workdir / "maintenance").exists()


def test_gc_waits_for_writes_in_flight_and_gives_up_after_the_timeout(proxy_factory, tls_files):
    proxy = proxy_factory()
    client = Client(proxy.url, tls_files.ca_cert)
    start = client.request("POST", "/v2/gc/slow/blobs/uploads/", [("Authorization", MARK)], body=b"")
    assert start.status == 202
    location = urlsplit(start.header("Location") or "")
    ctx = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    conn = http.client.HTTPSConnection(proxy.host, proxy.port, context=ctx, timeout=60)
    conn.putrequest("PATCH", f"{location.path}?{location.query}")
    conn.putheader("Authorization", MARK)
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    conn.send(b"5\r\nhello\r\n")  # ... and then nothing: a write in flight
    try:
        marker = proxy.workdir / "ran"
        result = cli("gc", "--config", str(proxy.config_path), "--timeout", "2", "--run", f"touch {marker}")
        assert result.returncode == 1, result
        assert "writes still in flight" in result.stderr and "not running the command" in result.stderr
        assert not marker.exists()
        assert not (proxy.workdir / "maintenance").exists()
    finally:
        conn.close()
