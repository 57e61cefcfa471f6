"""SIGHUP re-reads proxy.yml: new policy applies at once; a broken file keeps the old one."""

from __future__ import annotations

import signal
import time

import yaml

from tests.support.httpclient import Client, basic

READER = basic("reader", "readerpwd")


def _wait_log(proxy, text: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while text not in proxy.log_text():
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{proxy.log_tail()}"
        time.sleep(0.05)


def _upload(client: Client) -> int:
    return client.request("POST", "/v2/reload/app/blobs/uploads/", [("Authorization", READER)], body=b"").status


def test_sighup_applies_new_access_and_keeps_old_on_error(proxy_factory, tls_files):
    proxy = proxy_factory()
    client = Client(proxy.url, tls_files.ca_cert)
    assert _upload(client) == 403  # reader is not in group pusher

    config = yaml.safe_load(proxy.config_path.read_text())
    config["access"]["push"] = "users"
    config["backend"] = "http://127.0.0.1:1"  # bound at start: must not change without a restart
    proxy.config_path.write_text(yaml.safe_dump(config))
    proxy.send_signal(signal.SIGHUP)
    _wait_log(proxy, "SIGHUP: config reloaded")
    assert _upload(client) == 202  # any user may push now
    assert "backend changed" in proxy.log_text() and "after a restart" in proxy.log_text()

    proxy.config_path.write_text("access:\n  push: [unclosed\n")
    proxy.send_signal(signal.SIGHUP)
    _wait_log(proxy, "SIGHUP: keeping the old config")
    assert _upload(client) == 202  # still the last good policy, and still forwarding to the old backend
