"""Robot accounts end to end (issue 14): real clients, real TLS, the real registry behind a tap.

Each robot is made with the real CLI (``robot add --config proxy.yml``), so
the file the proxy reads is the one an operator's command writes. Cases:
a robot pushes within its scope (docker, podman, skopeo, buildah, ctr), is
refused outside it (nothing reaches the backend), is refused after
``robot remove`` and after expiry, and its token dies with it. The access
log shows ``robot$NAME`` and the metrics count it as a robot.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import time
from urllib.parse import urlencode

import pytest

from auth.userfiles import robots as rf
from auth.userfiles.atomic import rewrite
from tests.integration.test_clients import backend_tags
from tests.integration.test_ops_admin import samples, value
from tests.support.authz import (
    bearer,
    challenge_params,
    error_code,
    error_message,
    granted,
    start_rig,
    token,
    unique,
)
from tests.support.clients import must
from tests.support.httpclient import basic
from tests.support.image import to_docker_archive
from tests.support.proxyproc import ProxyProcess
from tests.support.tap import Tap
from tests.support.tinyimage import push_tiny

ACCESS = {"pull": "anyone", "push": ["pusher"], "delete": ["pusher"]}
REREAD = 1.2  # the store re-reads the user files at most once a second
REFUSAL_BOUND = 15.0  # docker retries some failures for ~50 s; a refusal must come at once


def robot(proxy: ProxyProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """The operator's command, against the proxy's own proxy.yml (so auth.robots resolves as serve's)."""
    return subprocess.run([sys.executable, "-m", "proxy", "robot", *args, "--config", str(proxy.config_path)],
                          capture_output=True, text=True, timeout=60, check=False)


def add_robot(proxy: ProxyProcess, name: str, *args: str) -> str:
    """A robot in group pusher (the default access gives push to that group only); returns the secret."""
    made = must(robot(proxy, "add", name, "--group", "pusher", "--json", *args))
    info = json.loads(made.stdout)
    assert info["username"] == f"robot${name}" and (proxy.workdir / "robots.yml").exists()
    time.sleep(REREAD)  # a new robot, like a removed one, takes effect within a second
    return str(info["secret"])


def expire_now(proxy: ProxyProcess, name: str) -> None:
    """What an operator's hand edit does: the robot's expiry moved to the past, under the CLI's lock."""
    def edit(lines: list[str]) -> list[str]:
        found = rf.find(lines, name)
        assert found is not None
        return rf.set_robot(lines, dataclasses.replace(found, expires=time.time() - 1))
    rewrite(proxy.workdir / "robots.yml", edit)


@pytest.fixture
def tap(registry):
    t = Tap(registry.port).start()
    yield t
    t.stop()


# ------------------------------------------------------------------ docker


def test_docker_robot_pushes_in_scope_only_and_stops_when_removed(proxy_factory, registry, docker_daemon,
                                                                  docker_client, oci_image, tls_files, tmp_path):
    proxy = proxy_factory()
    host = proxy.host_port
    docker_daemon.trust(host, tls_files.ca_cert)
    docker = docker_client
    scope = unique("robots/docker")
    secret = add_robot(proxy, "ci-docker", "--push", f"{scope}/**", "--expires", "1d")
    image = oci_image(tag="v1", layers=2)
    must(docker.load(to_docker_archive(image, tmp_path / "img.tar", "example.test/img")))
    inside, outside, later = f"{host}/{scope}/app:v1", f"{host}/{scope}-other/app:v1", f"{host}/{scope}/app:v2"
    for ref in (inside, outside, later):
        must(docker.tag("example.test/img:v1", ref))

    must(docker.login(host, "robot$ci-docker", secret))
    must(docker.push(inside))
    assert backend_tags(registry, f"{scope}/app") == ["v1"]

    start = time.monotonic()
    r = docker.push(outside)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "denied" in out and time.monotonic() - start < REFUSAL_BOUND, out
    assert backend_tags(registry, f"{scope}-other/app") == []

    must(robot(proxy, "remove", "ci-docker"))
    time.sleep(REREAD)
    start = time.monotonic()
    r = docker.push(later)
    assert r.returncode != 0 and time.monotonic() - start < REFUSAL_BOUND, r.stdout + r.stderr
    assert backend_tags(registry, f"{scope}/app") == ["v1"]
    assert docker.login(host, "robot$ci-docker", secret).returncode != 0
    must(docker.logout(host))


# ------------------------------------------------------------------ podman (and buildah on its storage)


@pytest.mark.parametrize("mode", ["bearer", "basic"])
def test_podman_robot_pushes_in_scope_only_and_stops_when_expired(proxy_factory, registry, podman, oci_image,
                                                                  mode):
    proxy = proxy_factory(challenge=mode)
    host = proxy.host_port
    scope = unique(f"robots/podman-{mode}")
    secret = add_robot(proxy, "ci-podman", "--push", f"{scope}/**", "--expires", "90d")
    must(podman.load_oci(oci_image(tag="v1", layers=2).ref, "localhost/test/img:v1"))

    must(podman.login(host, "robot$ci-podman", secret))
    must(podman.push("localhost/test/img:v1", f"{host}/{scope}/app:v1"))
    assert backend_tags(registry, f"{scope}/app") == ["v1"]
    r = podman.push("localhost/test/img:v1", f"{host}/{scope}-other/app:v1")
    assert r.returncode != 0 and "robot 'robot$ci-podman' has no push scope matching" in r.stderr, r.stderr
    assert backend_tags(registry, f"{scope}-other/app") == []

    expire_now(proxy, "ci-podman")
    time.sleep(REREAD)
    r = podman.push("localhost/test/img:v1", f"{host}/{scope}/app:v2")
    assert r.returncode != 0, r.stderr
    assert backend_tags(registry, f"{scope}/app") == ["v1"]
    assert podman.login(host, "robot$ci-podman", secret).returncode != 0


def test_a_robot_made_to_expire_in_two_seconds_cannot_log_in_after(proxy_factory, podman):
    proxy = proxy_factory()
    secret = add_robot(proxy, "ci-short", "--push", "robots/short/**", "--expires", "2s")
    time.sleep(2.5)  # past its expiry; no re-read needed: expiry is checked at every use
    r = podman.login(proxy.host_port, "robot$ci-short", secret)
    assert r.returncode != 0 and "invalid username/password" in r.stderr, r.stderr


def test_buildah_skopeo_and_ctr_push_as_a_robot(proxy_factory, registry, podman, skopeo, docker_daemon,
                                                oci_image, tls_files, tmp_path):
    proxy = proxy_factory()
    host = proxy.host_port
    scope = unique("robots/tools")
    secret = add_robot(proxy, "ci-tools", "--push", f"{scope}/**", "--expires", "1d")
    creds = f"robot$ci-tools:{secret}"
    image = oci_image(tag="v1", layers=1)

    must(skopeo.push(image.ref, f"{host}/{scope}/skopeo:v1", dest_creds=creds))
    r = skopeo.push(image.ref, f"{host}/{scope}-other/skopeo:v1", dest_creds=creds)
    assert r.returncode != 0 and "denied" in r.stderr, r.stderr

    must(podman.load_oci(image.ref, "localhost/test/img:v1"))
    buildah = ["buildah", "--root", str(podman.root), "--runroot", str(podman.runroot), "--storage-driver", "vfs"]
    tls = ["--authfile", str(podman.authfile), "--cert-dir", str(tls_files.cert_dir)]
    must(podman.run([*buildah, "login", *tls, "-u", "robot$ci-tools", "--password-stdin", host], stdin=secret))
    must(podman.run([*buildah, "push", *tls, "localhost/test/img:v1", f"docker://{host}/{scope}/buildah:v1"]))
    r = podman.run([*buildah, "push", *tls, "localhost/test/img:v1", f"docker://{host}/{scope}-other/buildah:v1"])
    assert r.returncode != 0, r.stderr

    hosts = tmp_path / "certs.d" / host
    hosts.mkdir(parents=True)
    (hosts / "hosts.toml").write_text(f'server = "https://{host}"\n[host."https://{host}"]\n'
                                      f'  capabilities = ["pull", "resolve", "push"]\n  ca = "{tls_files.ca_cert}"\n')
    ctr = ["ctr", "--address", str(docker_daemon.containerd_sock), "-n", "rap-robots"]
    hd = ["--hosts-dir", str(tmp_path / "certs.d")]

    def run_ctr(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*ctr, *args], capture_output=True, text=True, timeout=120, check=False)

    must(run_ctr("images", "import", "--no-unpack", str(to_docker_archive(image, tmp_path / "i.tar", "ex.test/i"))))
    for name in ("ctr", "ctr-out"):
        repo = f"{scope}/{name}" if name == "ctr" else f"{scope}-other/ctr"
        must(run_ctr("images", "tag", "--force", "ex.test/i:v1", f"{host}/{repo}:v1"))
    must(run_ctr("images", "push", *hd, "-u", creds, f"{host}/{scope}/ctr:v1"))  # containerd: POST password grant
    assert run_ctr("images", "push", *hd, "-u", creds, f"{host}/{scope}-other/ctr:v1").returncode != 0

    for repo in ("skopeo", "buildah", "ctr"):
        assert backend_tags(registry, f"{scope}/{repo}") == ["v1"], repo
        assert backend_tags(registry, f"{scope}-other/{repo}") == [], repo
    assert "POST /token" in proxy.log_text()  # ctr's login really went through the password grant


# ------------------------------------------------------------------ raw HTTP: tokens, Basic, what the backend saw


def test_tokens_are_narrowed_refused_with_the_scope_named_and_die_with_the_robot(proxy_factory, tap, tls_files):
    rig = start_rig(proxy_factory, tap, tls_files.ca_cert, access=ACCESS)
    client, proxy = rig.client, rig.proxy
    scope = unique("robots/http")
    upload = f"/v2/{scope}/app/blobs/uploads/"
    soon = add_robot(proxy, "ci-soon", "--push", f"{scope}/**", "--expires", "15s")
    made = time.monotonic()
    soon_tok = token(client, [f"repository:{scope}/app:pull,push"], basic("robot$ci-soon", soon))
    assert client.request("POST", upload, bearer(soon_tok), body=b"").status == 202
    assert time.monotonic() - made < 15, "over 15 s to get here: the token was not used before the robot expired"
    keep = add_robot(proxy, "ci-keep", "--push", f"{scope}/**", "--expires", "1d")
    gone = add_robot(proxy, "ci-gone", "--push", f"{scope}/**", "--expires", "1d")
    auth = basic("robot$ci-keep", keep)

    push_tiny(client, f"{scope}/app", "v1", auth=auth)  # Basic, in scope
    tok = token(client, [f"repository:{scope}/app:pull,push", f"repository:{scope}-other/app:pull,push"], auth)
    assert granted(tok, f"{scope}/app") == ["pull", "push"] and granted(tok, f"{scope}-other/app") == []
    service = challenge_params(client.request("GET", "/v2/").header("WWW-Authenticate") or "")["service"]
    form = urlencode({"grant_type": "password", "username": "robot$ci-keep", "password": keep,
                      "service": service, "scope": f"repository:{scope}/app:pull,push"}).encode()
    posted = client.request("POST", "/token", [("Content-Type", "application/x-www-form-urlencoded")], body=form)
    assert posted.status == 200 and granted(posted.json()["access_token"], f"{scope}/app") == ["pull", "push"]

    tap.clear()
    denied = client.request("POST", f"/v2/{scope}-other/app/blobs/uploads/", [("Authorization", auth)], body=b"")
    assert denied.status == 403 and error_code(denied) == "DENIED"
    assert "robot 'robot$ci-keep' has no push scope matching" in error_message(denied)
    with_token = client.request("POST", f"/v2/{scope}-other/app/blobs/uploads/", bearer(tok), body=b"")
    assert with_token.status == 401 and 'error="insufficient_scope"' in (with_token.header("WWW-Authenticate") or "")
    assert "robot 'robot$ci-keep' has no push scope" in error_message(with_token)
    assert tap.requests() == []  # neither refusal reached the registry

    gone_tok = token(client, [f"repository:{scope}/app:pull,push"], basic("robot$ci-gone", gone))
    assert client.request("POST", upload, bearer(gone_tok), body=b"").status == 202
    must(robot(proxy, "remove", "ci-gone"))
    time.sleep(max(REREAD, 15.5 - (time.monotonic() - made)))  # ci-soon is past its expiry now
    tap.clear()
    for t, who in ((gone_tok, "removed"), (soon_tok, "expired")):  # both tokens are within their 300 s
        dead = client.request("POST", upload, bearer(t), body=b"")
        assert dead.status == 401 and error_code(dead) == "UNAUTHORIZED", (who, dead.status, dead.body)
    assert client.request("GET", "/v2/", [("Authorization", basic("robot$ci-gone", gone))]).status == 401
    assert client.request("GET", "/v2/", [("Authorization", basic("robot$ci-soon", soon))]).status == 401
    assert tap.requests() == []  # dead credentials reach nothing
    assert client.request("POST", upload, bearer(tok), body=b"").status == 202  # ci-keep is unaffected
    assert len(tap.requests()) == 1


def test_a_robot_without_the_group_is_refused_by_access_and_logged_and_counted(proxy_factory, tap, tls_files):
    rig = start_rig(proxy_factory, tap, tls_files.ca_cert, access=ACCESS)
    client, proxy = rig.client, rig.proxy
    made = must(robot(proxy, "add", "ci-nogroup", "--push", "robots/nogroup/**", "--expires", "1d", "--json"))
    assert "--group pusher" in made.stderr  # the CLI warned the operator at once
    time.sleep(REREAD)
    auth = basic("robot$ci-nogroup", json.loads(made.stdout)["secret"])
    denied = client.request("POST", "/v2/robots/nogroup/app/blobs/uploads/", [("Authorization", auth)], body=b"")
    assert denied.status == 403 and "is not a member of group pusher" in error_message(denied)
    assert rig.nothing_forwarded()
    assert client.request("GET", "/v2/", [("Authorization", auth)]).status == 200

    deadline = time.monotonic() + 15
    while '"GET /v2/ HTTP/1.1" 200' not in proxy.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert " - robot$ci-nogroup [" in proxy.log_text()  # the access log names the robot
    found = samples(proxy.admin_url)
    # the ping is counted as a robot's; the refused push has no verified user on the request, as for people
    assert value(found, "registry_auth_proxy_requests_total", action="pull", status="200", user="robot") == 1
    assert value(found, "registry_auth_proxy_requests_total", action="pull", status="200", user="person") == 0


def test_robot_logins_are_throttled_like_every_login(proxy_factory, tap, tls_files):
    rig = start_rig(proxy_factory, tap, tls_files.ca_cert, access=ACCESS,
                    overrides={"throttle": {"failures": 3, "window": 60}})
    add_robot(rig.proxy, "ci-guess", "--push", "robots/guess/**", "--expires", "1d")
    statuses = [rig.client.request("GET", "/v2/", [("Authorization", basic("robot$ci-guess", f"guess{i}"))]).status
                for i in range(5)]
    assert statuses[:3] == [401, 401, 401] and statuses[3:] == [429, 429]
