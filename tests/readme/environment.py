"""The reader's machine for the README run: a clean shell environment and private client state.

The README's commands are run unchanged; only the environment points them at
the suite's own things: ``DOCKER_HOST`` at the session's private dockerd,
``DOCKER_CONFIG`` and ``XDG_RUNTIME_DIR`` (podman's and skopeo's auth.json) at
empty credential stores, and podman at its own vfs storage, so nothing touches the machine's real daemon,
logins or images. TLS trust is what the demo installs (/etc/docker/certs.d and
/etc/containers/certs.d), as for a reader.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.clients import Docker, must

# What a reader's fresh root shell would not have: this suite's venv, and settings meant for other tests.
# REGISTRY_* above all: docker-registry reads every such variable as configuration (REGISTRY_AUTH_FILE,
# podman's auth file variable, becomes `auth: file`, and the demo's registry refuses to start).
DROPPED_PREFIXES = ("PYTEST_", "RAP_", "DOCKER_", "CONTAINERS_", "REGISTRY_")
DROPPED = {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME"}
DEMO_HOST = "localhost:5043"
TRUST_FILES = tuple(Path(base) / DEMO_HOST / "ca.crt" for base in ("/etc/docker/certs.d", "/etc/containers/certs.d"))


@contextmanager
def reader_env(work: Path, docker_socket: Path) -> Iterator[dict[str, str]]:
    """Environment for the blocks; the podman run root (short path: podman limits it) is removed after."""
    venv_bin = str(Path(sys.prefix) / "bin")
    env = {key: value for key, value in os.environ.items()
           if key not in DROPPED and not key.upper().startswith(DROPPED_PREFIXES)}
    env["PATH"] = ":".join(part for part in os.environ.get("PATH", "/usr/bin:/bin").split(":")
                           if part and part != venv_bin)
    env["NO_PROXY"] = env["no_proxy"] = ",".join(filter(None, [os.environ.get("NO_PROXY"), "localhost,127.0.0.1"]))
    runroot = Path(tempfile.mkdtemp(prefix="pr", dir="/tmp"))
    try:
        for folder in ("docker-config", "run", "podman-root", "podman-tmp"):
            (work / folder).mkdir(parents=True, exist_ok=True)
        (work / "run").chmod(0o700)
        (work / "docker-config" / "config.json").write_text(json.dumps({"auths": {}}))
        (work / "storage.conf").write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{work / "podman-root"}"\nrunroot = "{runroot}"\n')
        (work / "containers.conf").write_text(
            '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
            f'events_logfile_path = "{work / "podman-events.log"}"\ntmp_dir = "{work / "podman-tmp"}"\n')
        env.update(
            DOCKER_HOST=f"unix://{docker_socket}",
            DOCKER_CONFIG=str(work / "docker-config"),
            CONTAINERS_STORAGE_CONF=str(work / "storage.conf"),
            CONTAINERS_CONF=str(work / "containers.conf"),
            XDG_RUNTIME_DIR=str(work / "run"),  # podman and skopeo keep logins in its containers/auth.json
        )
        yield env
    finally:
        shutil.rmtree(runroot, ignore_errors=True)
        shutil.rmtree(work / "podman-root", ignore_errors=True)


def load_local_image(docker: Docker, name: str = "busybox:latest") -> None:
    """The walk-through's "any local image": a one-file image made with ``docker import`` (no registry here)."""
    archive = docker.workdir / "image.tar"
    with tarfile.open(archive, "w") as tar:
        data = b"hello from the README walk-through\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    must(docker.cli("import", str(archive), name))


def foreign_trust() -> list[Path]:
    """Demo CA files already present with another CA: the demo keeps them, and clients would then fail."""
    ca = (Path(__file__).resolve().parents[2] / "certs-example" / "ca.crt").read_bytes()
    return [path for path in TRUST_FILES if path.exists() and path.read_bytes() != ca]
