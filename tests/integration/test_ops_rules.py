"""Per-repository rules against the real registry, through real clients, via Basic and via tokens."""

from __future__ import annotations

import pytest

from tests.support.clients import must
from tests.support.httpclient import Client, basic
from tests.support.tinyimage import push_tiny

RULES = {
    "pull": "anyone",
    "push": ["pusher"],
    "delete": ["pusher"],
    "repositories": [
        {"match": "team-a/**", "push": ["team-a"]},
        {"match": "private/**", "pull": "users"},
        {"match": "vault/**", "pull": ["admins"]},
    ],
}


def _proxy(proxy_factory, challenge: str):
    """reader is in team-a (only); mark is in pusher (only)."""
    proxy = proxy_factory(challenge=challenge, access=RULES, start=False)
    (proxy.workdir / "users.groups").write_text("pusher: mark\nteam-a: reader\n")
    return proxy.start()


@pytest.mark.parametrize("challenge", ["basic", "bearer"])
def test_team_rule_applies_to_basic_and_tokens(proxy_factory, skopeo, oci_image, challenge):
    proxy = _proxy(proxy_factory, challenge)
    image = oci_image(layers=1, files_per_layer=1, file_size=4096)
    host = proxy.host_port
    must(skopeo.push(image.ref, f"{host}/team-a/x:{challenge}", dest_creds="reader:readerpwd"))
    refused = skopeo.push(image.ref, f"{host}/team-b/x:{challenge}", dest_creds="reader:readerpwd")
    assert refused.returncode != 0
    assert "denied" in refused.stderr.lower() or "unauthorized" in refused.stderr.lower(), refused.stderr
    # the default push rule still governs names no rule matches, and team-a/** overrides it
    must(skopeo.push(image.ref, f"{host}/team-b/x:{challenge}", dest_creds="mark:pusherpwd"))
    assert skopeo.push(image.ref, f"{host}/team-a/y:{challenge}", dest_creds="mark:pusherpwd").returncode != 0


@pytest.mark.parametrize("challenge", ["basic", "bearer"])
def test_private_pull_needs_a_login(proxy_factory, skopeo, tls_files, challenge):
    proxy = _proxy(proxy_factory, challenge)
    client = Client(proxy.url, tls_files.ca_cert)
    push_tiny(client, "private/db", "v1", auth=basic("mark", "pusherpwd"))
    push_tiny(client, "public/db", "v1", auth=basic("mark", "pusherpwd"))
    accept = [("Accept", "application/vnd.oci.image.manifest.v1+json")]
    assert client.request("GET", "/v2/private/db/manifests/v1", accept).status == 401
    assert client.request("GET", "/v2/public/db/manifests/v1", accept).status == 200
    assert client.request("GET", "/v2/private/db/manifests/v1",
                          [*accept, ("Authorization", basic("reader", "readerpwd"))]).status == 200
    assert skopeo.inspect_digest(f"{proxy.host_port}/private/db:v1").returncode != 0
    must(skopeo.inspect_digest(f"{proxy.host_port}/private/db:v1", creds="reader:readerpwd"))
    must(skopeo.inspect_digest(f"{proxy.host_port}/public/db:v1"))


def test_mount_from_needs_pull_on_the_source(proxy_factory, tls_files):
    proxy = _proxy(proxy_factory, "basic")
    client = Client(proxy.url, tls_files.ca_cert)
    reader = [("Authorization", basic("reader", "readerpwd"))]
    mount = "/blobs/uploads/?mount=sha256:" + "0" * 64 + "&from="
    ok = client.request("POST", f"/v2/team-a/dst{mount}private/x", reader, body=b"")
    assert ok.status in (201, 202), ok.body  # push on team-a, pull on private/** (any user)
    denied = client.request("POST", f"/v2/team-a/dst{mount}vault/x", reader, body=b"")
    assert denied.status == 403 and b"vault/x" in denied.body, denied.body  # no pull on the source
    denied = client.request("POST", f"/v2/team-b/dst{mount}private/x", reader, body=b"")
    assert denied.status == 403 and b"team-b/dst" in denied.body, denied.body  # no push on the target
