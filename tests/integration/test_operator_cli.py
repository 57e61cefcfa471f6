"""What an operator types on day 2: --version, reload by pid file, metrics with data from the start."""

from __future__ import annotations

import json
import re
import time
import urllib.request

from proxy import version
from tests.integration.test_ops_maintenance import cli


def _wait_for(check, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.05)


def test_version_is_the_installed_one() -> None:
    result = cli("--version")
    assert result.returncode == 0 and result.stdout.strip() == f"registry-auth-proxy {version()}", result


def test_reload_signals_this_configs_instance_and_it_rereads_the_config(proxy_factory) -> None:
    proxy = proxy_factory()
    pid_file = proxy.workdir / "registry-auth-proxy.pid"
    assert pid_file.read_text().strip() == str(proxy.pid)  # serve wrote it beside its config
    before = proxy.log_text().count("config reloaded")
    result = cli("reload", "--config", str(proxy.config_path))
    assert result.returncode == 0, result
    assert f"pid {proxy.pid}" in result.stdout and f"using config {proxy.config_path}" in result.stderr
    _wait_for(lambda: proxy.log_text().count("config reloaded") > before)
    proxy.stop()
    assert not pid_file.exists()  # removed at exit
    stale = cli("reload", "--config", str(proxy.config_path))
    assert stale.returncode == 1 and "no running instance" in stale.stderr


def test_a_second_serve_of_the_same_config_is_refused(proxy_factory) -> None:
    proxy = proxy_factory()
    second = cli("serve", "--config", str(proxy.config_path), timeout=60)
    assert second.returncode == 1 and f"another instance (pid {proxy.pid})" in second.stderr, second
    assert (proxy.workdir / "registry-auth-proxy.pid").read_text().strip() == str(proxy.pid)


def test_metrics_have_build_info_process_figures_and_zero_counters_from_start(proxy_factory) -> None:
    proxy = proxy_factory()
    with urllib.request.urlopen(proxy.admin_url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert f'registry_auth_proxy_build_info{{version="{version()}"}} 1.0' in text
    for name in ("process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds",
                 "process_start_time_seconds"):
        assert re.search(rf"^{name} [0-9.e+]+$", text, re.M), name
    for series in ('registry_auth_proxy_backend_errors_total{status="502"} 0.0',
                   'registry_auth_proxy_backend_errors_total{status="504"} 0.0',
                   'registry_auth_proxy_auth_failures_total{status="401"} 0.0'):
        assert series in text, series
    with urllib.request.urlopen(proxy.admin_url + "/healthz", timeout=10) as resp:
        assert json.load(resp)["status"] == "alive"
