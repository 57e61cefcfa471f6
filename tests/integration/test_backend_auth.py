"""A registry that demands its own auth fails check-config and /readyz, with the fix (issue 12).

Debian's stock ``/etc/docker/registry/config.yml`` enables htpasswd auth: the
registry answers the proxy's ``GET /v2/`` with 401, so every pull and push
through the proxy fails. Before, check-config said "config OK" and /readyz
said ready (``backend_status: 401``). Against the real docker-registry, with
and without an ``auth:`` section.
"""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.authregistry import AuthRegistry
from tests.support.httpclient import Client

FIX = "remove the `auth:` section from the registry's config.yml"


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def check_config(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "proxy", "check-config", "--config", str(config)],
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthRegistry]:
    backend = AuthRegistry(tmp_path_factory.mktemp("auth-registry"))
    backend.start()
    try:
        yield backend
    finally:
        backend.stop()


def test_the_registry_with_auth_really_breaks_requests_through_the_proxy(proxy_factory, auth_registry):
    """The symptom the checks exist for: an anonymous pull the policy allows still fails."""
    proxy = proxy_factory(backend=auth_registry.url, tls=False)
    assert Client(proxy.url).request("GET", "/v2/_catalog").status != 200


def test_check_config_fails_on_a_backend_that_demands_auth(proxy_factory, auth_registry):
    proxy = proxy_factory(backend=auth_registry.url, start=False)
    result = check_config(proxy.write_config())
    assert result.returncode == 1, result.stdout
    errors = [x for x in result.stdout.splitlines() if x.startswith("error: ")]
    assert errors == [f"error: backend {auth_registry.url} demands its own auth (GET /v2/ answered 401), so every "
                      f"request through the proxy fails: {FIX} (Debian: /etc/docker/registry/config.yml) and "
                      "restart the registry; the proxy does the auth"]
    assert result.stdout.splitlines()[-1] == "config NOT OK: serve would start, but clients would fail"


def test_readyz_is_503_and_names_the_fix(proxy_factory, auth_registry):
    proxy = proxy_factory(backend=auth_registry.url)
    status, body = get(proxy.admin_url + "/readyz")
    answer = json.loads(body)
    assert status == 503 and answer["backend_status"] == 401
    assert FIX in answer["error"] and "the proxy does the auth" in answer["error"]


def test_the_normal_registry_passes_both(proxy_factory, registry):
    proxy = proxy_factory()
    result = check_config(proxy.config_path)
    assert result.returncode == 0, result.stdout
    assert result.stdout.splitlines()[-1].startswith("config OK")
    assert not [x for x in result.stdout.splitlines() if "backend" in x and x.startswith(("warning", "error"))]
    status, body = get(proxy.admin_url + "/readyz")
    assert status == 200 and json.loads(body) == {"status": "ready", "backend_status": 200}


def test_an_unreachable_registry_only_warns(proxy_factory, registry):
    """The proxy may be checked before the registry starts: said, not failed."""
    proxy = proxy_factory(start=False)
    with registry.stopped():
        result = check_config(proxy.write_config())
    assert result.returncode == 0, result.stdout
    assert [x for x in result.stdout.splitlines() if "backend" in x and x.startswith("warning")] == [
        f"warning: backend {registry.url} does not answer GET /v2/ ([Errno 111] Connection refused), so whether "
        "it demands its own auth could not be checked; clients will get 502 until it answers"]
