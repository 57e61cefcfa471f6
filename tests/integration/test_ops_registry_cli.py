"""``registry-auth-proxy registry ...`` against the real registry through a real proxy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.httpclient import Client, basic
from tests.support.proxyproc import REPO_ROOT
from tests.support.registry import Registry
from tests.support.tinyimage import push_index, push_tiny

MARK = basic("mark", "pusherpwd")


def registry_cli(proxy, tls_files, *args: str, user: str | None = None, password: str | None = None,
                 stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("RAP_PASSWORD", None)
    if password is not None:
        env["RAP_PASSWORD"] = password
    cmd = [sys.executable, "-m", "proxy", "registry", args[0], "--url", proxy.url,
           "--cacert", str(tls_files.ca_cert), *args[1:]]
    if user:
        cmd += ["--user", user]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, input=stdin or "", timeout=300,
                          check=False)


def test_catalog_follows_pagination_past_100(proxy_factory, tls_files, registry):
    direct = Client(registry.url)
    names = [f"cat120/r{i:03d}" for i in range(120)]
    for name in names:
        push_tiny(direct, name, "v1", layer_size=10)
    proxy = proxy_factory(access={"pull": "anyone", "push": ["pusher"], "delete": ["pusher"], "catalog": "users"})
    anonymous = registry_cli(proxy, tls_files, "catalog")
    assert anonymous.returncode == 1 and "refused anonymously" in anonymous.stderr, anonymous
    listed = registry_cli(proxy, tls_files, "catalog", "--json", user="reader", password="readerpwd")
    assert listed.returncode == 0, listed.stderr
    repos = json.loads(listed.stdout)
    assert set(names) <= set(repos) and len(repos) == len(set(repos))
    table = registry_cli(proxy, tls_files, "catalog", "--page-size", "50", user="reader", password="readerpwd")
    assert set(names) <= set(table.stdout.split())


def test_tags_inspect_and_delete_with_basic(proxy_factory, tls_files):
    proxy = proxy_factory(challenge="basic")
    client = Client(proxy.url, tls_files.ca_cert)
    amd = push_tiny(client, "cli/multi", "amd64", auth=MARK, layer_size=3000)
    arm = push_tiny(client, "cli/multi", "arm64", auth=MARK, layer_size=5000, arch="arm64")
    index = push_index(client, "cli/multi", "v1", {"linux/amd64": amd, "linux/arm64": arm}, auth=MARK)
    tags = registry_cli(proxy, tls_files, "tags", "cli/multi", "--json")
    assert sorted(json.loads(tags.stdout)["tags"]) == ["amd64", "arm64", "v1"], tags
    info = json.loads(registry_cli(proxy, tls_files, "inspect", "cli/multi:v1", "--json").stdout)
    assert info["digest"] == index and info["media_type"] == "application/vnd.oci.image.index.v1+json"
    assert [p["platform"] for p in info["platforms"]] == ["linux/amd64", "linux/arm64"]
    assert info["layers_size"] == 8000
    single = json.loads(registry_cli(proxy, tls_files, "inspect", "cli/multi:arm64", "--json").stdout)
    assert single["digest"] == arm.digest and single["layers"] == 1 and single["layers_size"] == 5000
    table = registry_cli(proxy, tls_files, "inspect", "cli/multi:v1")
    assert "linux/arm64" in table.stdout and index in table.stdout
    denied = registry_cli(proxy, tls_files, "delete", "cli/multi:amd64", "--password-stdin", user="reader",
                          stdin="readerpwd\n")
    assert denied.returncode == 1 and "403" in denied.stderr, denied
    gone = registry_cli(proxy, tls_files, "delete", "cli/multi:amd64", "--password-stdin", user="mark",
                        stdin="pusherpwd\n")
    assert gone.returncode == 0 and amd.digest in gone.stdout, gone
    assert client.request("GET", f"/v2/cli/multi/manifests/{amd.digest}",
                          [("Accept", "application/vnd.oci.image.manifest.v1+json")]).status == 404
    missing = registry_cli(proxy, tls_files, "inspect", "cli/multi:nope")
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_delete_with_tokens_and_a_registry_without_delete(proxy_factory, tls_files, tmp_path: Path):
    class NoDelete(Registry):
        def _config(self) -> dict[str, object]:
            config = super()._config()
            config["storage"]["delete"] = {"enabled": False}  # type: ignore[index]
            return config

    backend = NoDelete(tmp_path / "nodelete")
    backend.start()
    try:
        proxy = proxy_factory(backend=backend.url)  # bearer (token) mode
        push_tiny(Client(proxy.url, tls_files.ca_cert), "cli/keep", "v1", auth=MARK)
        result = registry_cli(proxy, tls_files, "delete", "cli/keep:v1", user="mark", password="pusherpwd")
        assert result.returncode == 1
        assert "delete disabled" in result.stderr and "REGISTRY_STORAGE_DELETE_ENABLED" in result.stderr
    finally:
        backend.stop()
