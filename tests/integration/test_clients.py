"""Real clients end to end: skopeo, podman and the docker daemon through the proxy.

For each client the same cases run in order, as a user would meet them:
a anonymous pull, b anonymous push refused, c login with a wrong password
refused, d a user outside the group is refused with "denied", e a pusher
pushes, f pull after login, g digests match. Every verdict is also checked
against the backend (tags/list), not just the client's exit code. The matrix
is appended to $RAP_MATRIX (CI prints it).
"""

from __future__ import annotations

import json
import os
import re
import time
import urllib.request
from pathlib import Path

import pytest

from tests.support.clients import must
from tests.support.image import to_docker_archive

MATRIX = Path(os.environ.get("RAP_MATRIX", "/tmp/rap-client-matrix.txt"))
REFUSAL_BOUND = 15.0  # docker's retry loop takes ~50 s; an immediate refusal takes < 1 s


def backend_tags(registry, repo: str) -> list[str]:
    try:
        with urllib.request.urlopen(f"{registry.url}/v2/{repo}/tags/list", timeout=10) as resp:
            return json.load(resp).get("tags") or []
    except urllib.error.HTTPError:
        return []


class Matrix:
    def __init__(self, client: str, mode: str) -> None:
        self.client, self.mode = client, mode
        self.rows: list[str] = []

    def record(self, case: str, ok: bool, result, seconds: float) -> None:
        text = (result.stderr or result.stdout or "").strip().splitlines()
        detail = text[-1][:160] if text else ""
        self.rows.append(f"| {self.client} | {self.mode} | {case} | {'as wanted' if ok else 'WRONG'} "
                         f"| {seconds:.1f} s | {detail.replace('|', '/')} |")

    def flush(self) -> None:
        with MATRIX.open("a") as out:
            out.write("\n".join(self.rows) + "\n")


def timed(fn, *args, **kwargs):
    start = time.monotonic()
    result = fn(*args, **kwargs)
    return result, time.monotonic() - start


@pytest.fixture
def seeded(registry, skopeo, oci_image):
    """An image written straight into the backend, for anonymous pulls."""
    image = oci_image(tag="v1", layers=2)
    ref = f"{registry.host_port}/seed/public:v1"
    must(skopeo.push(image.ref, ref, plain_http=True))
    return image


@pytest.mark.parametrize("mode", ["bearer", "basic"])
def test_skopeo(proxy_factory, registry, skopeo, oci_image, seeded, tmp_path, mode):
    proxy = proxy_factory(challenge=mode)
    host = proxy.host_port
    m = Matrix("skopeo", mode)
    repo = f"cli/skopeo-{mode}"
    image = oci_image(tag="v1", layers=2)

    r, t = timed(skopeo.pull, f"{host}/seed/public:v1", tmp_path / "a", tag="v1")
    m.record("a anonymous pull", r.returncode == 0, r, t)
    assert r.returncode == 0, r.stderr
    r, t = timed(skopeo.push, image.ref, f"{host}/{repo}-anon:v1")
    m.record("b anonymous push", r.returncode != 0, r, t)
    assert r.returncode != 0 and backend_tags(registry, f"{repo}-anon") == []
    r, t = timed(skopeo.login, host, "mark", "wrong")
    m.record("c login wrong password", r.returncode != 0, r, t)
    assert r.returncode != 0
    must(skopeo.login(host, "reader", "readerpwd"))
    r, t = timed(skopeo.push, image.ref, f"{host}/{repo}-reader:v1")
    m.record("d push outside group", r.returncode != 0 and "denied" in r.stderr, r, t)
    assert r.returncode != 0 and "denied" in r.stderr, r.stderr
    assert backend_tags(registry, f"{repo}-reader") == []
    must(skopeo.login(host, "mark", "pusherpwd"))
    r, t = timed(skopeo.push, image.ref, f"{host}/{repo}:v1")
    m.record("e push as pusher", r.returncode == 0, r, t)
    assert r.returncode == 0, r.stderr
    assert backend_tags(registry, repo) == ["v1"]
    r, t = timed(skopeo.pull, f"{host}/{repo}:v1", tmp_path / "f", tag="v1")
    m.record("f pull after login", r.returncode == 0, r, t)
    assert r.returncode == 0, r.stderr
    digest = must(skopeo.inspect_digest(f"{host}/{repo}:v1")).stdout.strip()
    pulled = json.loads((tmp_path / "f" / "index.json").read_text())["manifests"][0]["digest"]
    m.record("g digests match", digest == image.digest == pulled, r, 0)
    m.flush()
    assert digest == image.digest == pulled


@pytest.mark.parametrize("mode", ["bearer", "basic"])
def test_podman(proxy_factory, registry, podman, oci_image, seeded, tmp_path, mode):
    proxy = proxy_factory(challenge=mode)
    host = proxy.host_port
    m = Matrix("podman", mode)
    repo = f"cli/podman-{mode}"
    image = oci_image(tag="v1", layers=2)
    must(podman.load_oci(image.ref, "localhost/test/img:v1"))

    r, t = timed(podman.pull, f"{host}/seed/public:v1")
    m.record("a anonymous pull", r.returncode == 0, r, t)
    assert r.returncode == 0, r.stderr
    r, t = timed(podman.push, "localhost/test/img:v1", f"{host}/{repo}-anon:v1")
    m.record("b anonymous push", r.returncode != 0, r, t)
    assert r.returncode != 0 and backend_tags(registry, f"{repo}-anon") == []
    r, t = timed(podman.login, host, "mark", "wrong")
    m.record("c login wrong password", r.returncode != 0, r, t)
    assert r.returncode != 0
    must(podman.login(host, "reader", "readerpwd"))
    r, t = timed(podman.push, "localhost/test/img:v1", f"{host}/{repo}-reader:v1")
    m.record("d push outside group", r.returncode != 0 and "denied" in r.stderr, r, t)
    assert r.returncode != 0 and "denied" in r.stderr, r.stderr
    must(podman.login(host, "mark", "pusherpwd"))
    digestfile = tmp_path / "digest"
    r, t = timed(podman.push, "localhost/test/img:v1", f"{host}/{repo}:v1", digestfile=digestfile)
    m.record("e push as pusher", r.returncode == 0, r, t)
    assert r.returncode == 0, r.stderr
    assert backend_tags(registry, repo) == ["v1"]
    must(podman.rmi("localhost/test/img:v1"))
    r, t = timed(podman.pull, f"{host}/{repo}:v1")
    m.record("f pull after login", r.returncode == 0, r, t)
    assert r.returncode == 0, r.stderr
    pushed = digestfile.read_text().strip()
    inspect = must(podman.run([*podman.base(), "image", "inspect", "--format", "{{json .RepoDigests}}",
                               f"{host}/{repo}:v1"]))
    pulled = [d.split("@", 1)[1] for d in json.loads(inspect.stdout) if d.startswith(f"{host}/{repo}@")]
    # podman keeps the digest it first knew the image by as well; the pushed one must be there
    m.record("g digests match", pushed in pulled, r, 0)
    m.flush()
    assert pushed in pulled, (pushed, pulled)


def test_docker(proxy_factory, registry, docker_daemon, docker_client, oci_image, seeded, tls_files, tmp_path):
    proxy = proxy_factory()
    host = proxy.host_port
    docker_daemon.trust(host, tls_files.ca_cert)
    docker = docker_client
    m = Matrix("docker", "bearer")
    repo = "cli/docker"
    image = oci_image(tag="v1", layers=2)
    must(docker.load(to_docker_archive(image, tmp_path / "img.tar", "example.test/img")))

    r, t = timed(docker.pull, f"{host}/seed/public:v1")
    m.record("a anonymous pull", r.returncode == 0, r, t)
    assert r.returncode == 0, r.stderr
    for suffix in ("anon", "reader", ""):
        must(docker.tag("example.test/img:v1", f"{host}/{repo}{'-' + suffix if suffix else ''}:v1"))
    r, t = timed(docker.push, f"{host}/{repo}-anon:v1")
    m.record("b anonymous push", r.returncode != 0 and t < REFUSAL_BOUND, r, t)
    assert r.returncode != 0 and t < REFUSAL_BOUND, (t, r.stderr)
    assert backend_tags(registry, f"{repo}-anon") == []
    r, t = timed(docker.login, host, "mark", "wrong")
    m.record("c login wrong password", r.returncode != 0, r, t)
    assert r.returncode != 0, r.stdout
    must(docker.login(host, "reader", "readerpwd"))
    r, t = timed(docker.push, f"{host}/{repo}-reader:v1")
    ok = r.returncode != 0 and "denied" in (r.stderr + r.stdout) and t < REFUSAL_BOUND
    m.record("d push outside group", ok, r, t)
    assert ok, (t, r.stderr, r.stdout)
    assert backend_tags(registry, f"{repo}-reader") == []
    must(docker.login(host, "mark", "pusherpwd"))
    r, t = timed(docker.push, f"{host}/{repo}:v1")
    m.record("e push as pusher", r.returncode == 0, r, t)
    assert r.returncode == 0, r.stderr
    assert backend_tags(registry, repo) == ["v1"]
    pushed = re.search(r"digest: (sha256:[0-9a-f]{64})", r.stdout)
    assert pushed, r.stdout
    must(docker.rmi(f"{host}/{repo}:v1", f"{host}/{repo}-anon:v1", f"{host}/{repo}-reader:v1",
                    "example.test/img:v1"))
    r, t = timed(docker.pull, f"{host}/{repo}:v1")
    m.record("f pull after login", r.returncode == 0, r, t)
    assert r.returncode == 0, r.stderr
    pulled = must(docker.inspect_digest(f"{host}/{repo}:v1")).stdout.strip()
    m.record("g digests match", pulled == pushed.group(1), r, 0)
    must(docker.logout(host))
    m.flush()
    assert pulled == pushed.group(1)


def _ctr(daemon, *args: str, timeout: float = 120):
    import subprocess

    return subprocess.run(["ctr", "--address", str(daemon.containerd_sock), "-n", "rap-test", *args],
                          capture_output=True, text=True, timeout=timeout, check=False)


def _backend_digest(registry, repo: str, tag: str) -> str | None:
    accept = ", ".join(["application/vnd.oci.image.manifest.v1+json",
                        "application/vnd.docker.distribution.manifest.v2+json"])
    req = urllib.request.Request(f"{registry.url}/v2/{repo}/manifests/{tag}", method="HEAD",
                                 headers={"Accept": accept})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.headers["Docker-Content-Digest"]
    except urllib.error.HTTPError:
        return None


def test_ctr(proxy_factory, registry, docker_daemon, oci_image, seeded, tls_files, tmp_path):
    """containerd's resolver never pings; it answers each 401 challenge as it comes."""
    proxy = proxy_factory()
    host = proxy.host_port
    hosts = tmp_path / "certs.d" / host
    hosts.mkdir(parents=True)
    (hosts / "hosts.toml").write_text(
        f'server = "https://{host}"\n[host."https://{host}"]\n  capabilities = ["pull", "resolve", "push"]\n'
        f'  ca = "{tls_files.ca_cert}"\n')
    hd = ["--hosts-dir", str(tmp_path / "certs.d")]
    m = Matrix("ctr", "bearer")
    repo = "cli/ctr"
    image = oci_image(tag="v1", layers=2)
    must(_ctr(docker_daemon, "images", "import", "--no-unpack",
              str(to_docker_archive(image, tmp_path / "img.tar", "example.test/img"))))
    for suffix in ("anon", "reader", ""):
        must(_ctr(docker_daemon, "images", "tag", "--force", "example.test/img:v1",
                  f"{host}/{repo}{'-' + suffix if suffix else ''}:v1"))

    r, t = timed(_ctr, docker_daemon, "content", "fetch", *hd, f"{host}/seed/public:v1")
    m.record("a anonymous pull (fetch)", r.returncode == 0, r, t)
    assert r.returncode == 0, r.stderr
    r, t = timed(_ctr, docker_daemon, "images", "push", *hd, f"{host}/{repo}-anon:v1")
    m.record("b anonymous push", r.returncode != 0, r, t)
    assert r.returncode != 0 and backend_tags(registry, f"{repo}-anon") == []
    # ctr has no login; public reads ignore credentials, so a wrong --user cannot break a pull
    r, t = timed(_ctr, docker_daemon, "content", "fetch", *hd, "-u", "mark:wrong", f"{host}/seed/public:v1")
    m.record("c pull with a wrong --user still works", r.returncode == 0, r, t)
    assert r.returncode == 0, r.stderr
    r, t = timed(_ctr, docker_daemon, "images", "push", *hd, "-u", "reader:readerpwd", f"{host}/{repo}-reader:v1")
    m.record("d push outside group", r.returncode != 0, r, t)
    assert r.returncode != 0 and backend_tags(registry, f"{repo}-reader") == []
    r, t = timed(_ctr, docker_daemon, "images", "push", *hd, "-u", "mark:pusherpwd", f"{host}/{repo}:v1")
    m.record("e push as pusher", r.returncode == 0, r, t)
    assert r.returncode == 0, r.stderr
    assert backend_tags(registry, repo) == ["v1"]
    r, t = timed(_ctr, docker_daemon, "content", "fetch", *hd, "-u", "mark:pusherpwd", f"{host}/{repo}:v1")
    m.record("f pull with --user mark", r.returncode == 0, r, t)
    assert r.returncode == 0, r.stderr
    listed = must(_ctr(docker_daemon, "images", "ls", f"name=={host}/{repo}:v1")).stdout.split()
    local = next(w for w in listed if w.startswith("sha256:"))
    remote = _backend_digest(registry, repo, "v1")
    m.record("g digests match", local == remote, r, 0)
    m.flush()
    assert local == remote, (local, remote)
