"""The container image: built from Debian packages and PyPI only, run as the README says.

No container registry is reachable on CI machines, so ``FROM python:3.11-slim``
cannot be pulled: ``deploy/build-base.sh`` makes the base with debootstrap and
``docker import``, and ``deploy/Dockerfile`` installs the package into a venv.
These tests build both in the session's private dockerd, then run the image
as the README does (``--network host``, since that dockerd has no bridge;
read-only root, no capabilities, config mounted read-only) in front of the
session registry, and push and pull through it with skopeo.

The base's root file system is cached as a tar in ~/.cache/registry-auth-proxy
(``RAP_BASE_CACHE`` overrides the path), keyed by the script's content and
rebuilt after a week to pick up Debian security updates: debootstrap takes a
minute or two, importing the tar a few seconds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml

from tests.conftest import DEFAULT_ACCESS
from tests.support.authfiles import AuthFiles
from tests.support.clients import Docker, Skopeo, docker_cli, must
from tests.support.dockerd import DockerDaemon
from tests.support.image import OciImage
from tests.support.ports import free_port
from tests.support.proxyproc import REPO_ROOT
from tests.support.registry import Registry
from tests.support.tlsfiles import TlsFiles

BASE = "registry-auth-proxy-base:bookworm"
IMAGE = "registry-auth-proxy:test"
UID = 10001
BUILD_BASE = REPO_ROOT / "deploy" / "build-base.sh"
CACHE_MAX_AGE = 7 * 24 * 3600
OCI = "application/vnd.oci.image.manifest.v1+json"


def _base_cache() -> Path:
    if os.environ.get("RAP_BASE_CACHE"):
        return Path(os.environ["RAP_BASE_CACHE"])
    key = hashlib.sha256(BUILD_BASE.read_bytes()).hexdigest()[:12]
    cache_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache_home / "registry-auth-proxy" / f"base-bookworm-{key}.tar"


def _local_ca_pem() -> str:
    """The machine's site-local CAs (e.g. a TLS-inspecting egress proxy's), which pip needs in the build."""
    folder = Path("/usr/local/share/ca-certificates")
    return "".join(path.read_text() for path in sorted(folder.glob("*.crt"))) if folder.is_dir() else ""


@pytest.fixture(scope="module")
def docker(docker_daemon: DockerDaemon, tmp_path_factory: pytest.TempPathFactory) -> Docker:
    return docker_daemon.client(tmp_path_factory.mktemp("docker"))


@pytest.fixture(scope="module")
def base_image(docker: Docker) -> str:
    """deploy/build-base.sh into the session daemon, importing the on-disk cache when it is fresh."""
    cache = _base_cache()
    if cache.exists() and time.time() - cache.stat().st_mtime > CACHE_MAX_AGE:
        cache.unlink()
    started = time.monotonic()
    result = must(subprocess.run([str(BUILD_BASE), "--tag", BASE, "--cache", str(cache)],
                                 env={**docker.env(), "DOCKER": docker_cli()}, capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL, timeout=900, check=False))
    how = "from the cache" if "importing the cached" in result.stderr else "debootstrap"
    print(f"base image {how}: {time.monotonic() - started:.1f} s")
    assert cache.is_file()  # the next session imports it instead of running debootstrap
    return BASE


@pytest.fixture(scope="module")
def proxy_image(docker: Docker, base_image: str) -> str:
    """The README's ``docker build``, plus this machine's local CAs for pip."""
    started = time.monotonic()
    must(docker.cli("build", "--network", "host", "--build-arg", f"BASE={base_image}",
                    "--build-arg", f"EXTRA_CA_PEM={_local_ca_pem()}",
                    "-f", str(REPO_ROOT / "deploy" / "Dockerfile"), "-t", IMAGE, str(REPO_ROOT), timeout=900))
    print(f"proxy image build: {time.monotonic() - started:.1f} s")
    return IMAGE


def test_build_context_holds_only_the_package(docker: Docker, base_image: str, tmp_path: Path) -> None:
    """.dockerignore keeps venvs, users, keys, the maintenance flag and tests out of every image."""
    context = tmp_path / "context"
    shutil.copytree(REPO_ROOT / "proxy", context / "proxy", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO_ROOT / ".dockerignore", context / ".dockerignore")
    decoys = [".venv/bin/python", ".venv-aiohttp-low/x", ".git/config", ".demo/token.key", "users.htpasswd",
              "users.groups", "proxy/users.htpasswd", "token.key", "maintenance", "proxy.pid", "tests/conftest.py",
              "bench/RESULTS-quick.md", "proxy/__pycache__/x.cpython-311.pyc", "certs/server.pem", "proxy.yml"]
    for name in ["pyproject.toml", "README.md", *decoys]:
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text("x\n")
    probe = f"FROM {base_image}\nCOPY . /ctx\n"
    must(docker.cli("build", "--network", "host", "-t", "rap-context-probe", "-f", "-", str(context), stdin=probe))
    listed = must(docker.cli("run", "--rm", "--network", "host", "rap-context-probe", "find", "/ctx", "-type", "f"))
    found = {line.removeprefix("/ctx/") for line in listed.stdout.split()}
    assert {"pyproject.toml", "README.md", "proxy/cli/users.py", "proxy/ops/maintenance.py"} <= found
    assert not found & set(decoys)
    assert all(name.startswith("proxy/") for name in found - {"pyproject.toml", "README.md"})


def test_image_runs_as_uid_10001_and_ships_no_config(docker: Docker, proxy_image: str) -> None:
    config = json.loads(must(docker.cli("image", "inspect", "--format", "{{json .Config}}", proxy_image)).stdout)
    assert config["User"] == f"{UID}:{UID}"
    assert set(config["ExposedPorts"]) == {"5043/tcp", "9102/tcp"}
    inside = must(docker.cli("run", "--rm", "--network", "host", "--entrypoint", "sh", proxy_image, "-c",
                             "id -u; ls -A /etc/registry-auth-proxy | wc -l; "
                             "ls /opt/registry-auth-proxy/bin | grep -c '^pip' || true")).stdout.split()
    assert inside == [str(UID), "0", "0"]  # not root, an empty config folder, no pip left in the venv
    history = must(docker.cli("history", "--no-trunc", "--format", "{{.CreatedBy}}", proxy_image)).stdout
    assert "BEGIN CERTIFICATE" not in history and "EXTRA_CA_PEM" not in history  # build-stage arguments stay there


def _config_dir(root: Path, registry: Registry, tls_files: TlsFiles, auth_files: AuthFiles) -> tuple[Path, dict]:
    """An operator's /srv/rap: proxy.yml and the files it names, owned by the image's user."""
    etc = root / "etc"
    (etc / "tls").mkdir(parents=True)
    shutil.copy(tls_files.server_cert, etc / "tls" / "tls.crt")
    shutil.copy(tls_files.server_key, etc / "tls" / "tls.key")
    shutil.copy(auth_files.htpasswd, etc / "users.htpasswd")
    shutil.copy(auth_files.groups, etc / "users.groups")
    (etc / "token.key").write_text(base64.b64encode(os.urandom(48)).decode() + "\n")
    config = {
        "listen": f"127.0.0.1:{free_port()}",
        "tls": {"cert": "tls/tls.crt", "key": "tls/tls.key"},
        "backend": registry.url,  # 127.0.0.1 of the host: reachable because of --network host
        "auth": {"htpasswd": "users.htpasswd", "groups": "users.groups", "challenge": "bearer",
                 "token": {"secret_file": "token.key", "service": "registry.test"}},
        "access": DEFAULT_ACCESS,
        "admin": {"listen": f"127.0.0.1:{free_port()}"},
        "maintenance_file": "/var/lib/registry-auth-proxy/maintenance",
        "pid_file": "off",  # its default is beside proxy.yml, on a read-only mount; PID 1 takes the signals
    }
    (etc / "proxy.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    state = root / "state"
    state.mkdir()
    for path in [etc, state, *etc.rglob("*")]:
        os.chown(path, UID, UID)
    for key in (etc / "tls" / "tls.key", etc / "token.key"):
        key.chmod(0o600)
    return etc, config


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code
    except OSError:
        return 0


@pytest.fixture
def container(docker: Docker, proxy_image: str, registry: Registry, tls_files: TlsFiles, auth_files: AuthFiles,
              tmp_path: Path) -> Iterator[tuple[str, dict, Path]]:
    """The README's ``docker run``, hardened as the Kubernetes Deployment runs it."""
    etc, config = _config_dir(tmp_path, registry, tls_files, auth_files)
    name = f"rap-test-{os.getpid()}-{free_port()}"
    must(docker.cli("run", "-d", "--name", name, "--network", "host", "--read-only", "--cap-drop", "ALL",
                    "--security-opt", "no-new-privileges", "-v", f"{etc}:/etc/registry-auth-proxy:ro",
                    "-v", f"{tmp_path / 'state'}:/var/lib/registry-auth-proxy", proxy_image))
    try:
        yield name, config, tmp_path / "state"
    finally:
        print(docker.cli("logs", "--tail", "60", name).stderr)  # shown only if the test failed
        docker.cli("rm", "-f", name)


def _wait(check: Callable[[], bool], what: str, docker: Docker, name: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        state = must(docker.cli("inspect", "--format", "{{.State.Status}}", name)).stdout.strip()
        assert state == "running", f"the container is {state}:\n{docker.cli('logs', name).stderr}"
        assert time.monotonic() < deadline, f"{what} not reached within {timeout} s"
        time.sleep(0.2)


def test_push_and_pull_through_the_container(docker: Docker, container: tuple[str, dict, Path], registry: Registry,
                                             skopeo: Skopeo, oci_image: Callable[..., OciImage],
                                             tmp_path: Path) -> None:
    name, config, state = container
    admin = "http://" + config["admin"]["listen"]
    _wait(lambda: _get(admin + "/healthz") == 200, "/healthz", docker, name)
    _wait(lambda: _get(admin + "/readyz") == 200, "/readyz (the backend seen from the container)", docker, name)
    host = config["listen"]

    image = oci_image(layers=2, files_per_layer=2, file_size=32 * 1024)
    must(skopeo.push(image.ref, f"{host}/ctr/app:v1", dest_creds="mark:pusherpwd"))
    request = urllib.request.Request(f"{registry.url}/v2/ctr/app/manifests/v1", headers={"Accept": OCI})
    with urllib.request.urlopen(request, timeout=10) as response:  # straight from the backend
        assert response.headers["Docker-Content-Digest"] == image.digest
    pulled = tmp_path / "pulled"
    must(skopeo.pull(f"{host}/ctr/app:v1", pulled, tag="v1"))  # anonymous: pull is open to anyone
    assert image.digest.split(":", 1)[1] in {p.name for p in (pulled / "blobs" / "sha256").iterdir()}

    # The cluster recipe: the CLI run inside the container finds the config and flips the shared flag.
    must(docker.cli("exec", name, "registry-auth-proxy", "maintenance", "on", "--reason", "container test"))
    assert (state / "maintenance").exists()
    time.sleep(1.2)  # the proxy looks at the flag at most every 0.5 s
    refused = skopeo.push(image.ref, f"{host}/ctr/app:v2", dest_creds="mark:pusherpwd")
    assert refused.returncode != 0 and "maintenance" in refused.stderr
    must(docker.cli("exec", name, "registry-auth-proxy", "maintenance", "off"))
    assert not (state / "maintenance").exists()

    must(docker.cli("stop", "--time", "40", name))  # SIGTERM to PID 1: a drain, not a kill
    assert must(docker.cli("inspect", "--format", "{{.State.ExitCode}}", name)).stdout.strip() == "0"
    log = docker.cli("logs", name)
    assert '"PUT /v2/ctr/app/manifests/v1 HTTP/1.1" 201' in log.stdout + log.stderr
