"""Isolated wrappers around the real registry clients: skopeo, podman, docker.

Each wrapper owns a per-test directory for credentials, HOME and (podman)
image storage, so a login in one test can never leak into another, and no
test touches the machine's own ~/.docker or /var/lib/containers. TLS trust
comes only from a cert dir holding the test CA; verification is never
disabled against a TLS endpoint (``plain_http`` exists only for talking to
the bare plain-HTTP registry in infrastructure tests).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

DEFAULT_TIMEOUT = 300.0


def docker_cli() -> str:
    """Debian's docker CLI (matches the Debian dockerd) when present, else PATH's."""
    return os.environ.get("RAP_DOCKER_CLI") or ("/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker")


def must(result: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    """Raise with the command's full output if it failed; return it otherwise."""
    if result.returncode != 0:
        raise AssertionError(
            f"command failed ({result.returncode}): {' '.join(map(str, result.args))}\n"
            f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
        )
    return result


class _Client:
    """Shared plumbing: private HOME/config dirs, env, subprocess with timeout."""

    def __init__(self, workdir: Path, cert_dir: Path | None) -> None:
        self.workdir = workdir
        self.cert_dir = cert_dir
        self.home = workdir / "home"
        self.authfile = workdir / "auth.json"
        self.docker_config = workdir / "docker-config"
        for folder in (self.home, self.docker_config, workdir / "run"):
            folder.mkdir(parents=True, exist_ok=True)
        (workdir / "run").chmod(0o700)
        if not self.authfile.exists():
            # podman refuses a REGISTRY_AUTH_FILE/--authfile that does not exist.
            self.authfile.write_text(json.dumps({"auths": {}}))

    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if key.upper() not in {"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "DOCKER_HOST", "DOCKER_CONFIG"}
        }
        env.update(
            HOME=str(self.home),
            XDG_RUNTIME_DIR=str(self.workdir / "run"),
            XDG_CONFIG_HOME=str(self.home / ".config"),
            REGISTRY_AUTH_FILE=str(self.authfile),
            DOCKER_CONFIG=str(self.docker_config),
            NO_PROXY="127.0.0.1,localhost",
        )
        return env

    def run(
        self, args: Sequence[str], *, stdin: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        """Run a command; never raises on a non-zero exit (tests assert on it)."""
        return subprocess.run(
            list(args),
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=timeout,
            cwd=self.workdir,
        )

    def _tls(self, flag: str, plain_http: bool) -> list[str]:
        if plain_http:
            return [f"--{flag}tls-verify=false"]
        if self.cert_dir is None:
            return []
        return [f"--{flag}cert-dir", str(self.cert_dir)]


class Skopeo(_Client):
    """skopeo with its own auth file and the test CA as its only extra trust."""

    def login(
        self, host: str, user: str, password: str, *, plain_http: bool = False
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            [
                "skopeo",
                "login",
                "--authfile",
                str(self.authfile),
                *self._tls("", plain_http),
                "-u",
                user,
                "--password-stdin",
                host,
            ],
            stdin=password,
        )

    def logout(self, host: str) -> subprocess.CompletedProcess[str]:
        return self.run(["skopeo", "logout", "--authfile", str(self.authfile), host])

    def copy(
        self,
        src: str,
        dest: str,
        *,
        src_creds: str | None = None,
        dest_creds: str | None = None,
        plain_http: bool = False,
        extra: Sequence[str] = (),
        timeout: float = DEFAULT_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """``skopeo copy``; TLS/creds flags are added for whichever side is ``docker://``."""
        args = ["skopeo", "copy", "--authfile", str(self.authfile)]
        if src.startswith("docker://"):
            args += self._tls("src-", plain_http)
            args += ["--src-creds", src_creds] if src_creds else []
        if dest.startswith("docker://"):
            args += self._tls("dest-", plain_http)
            args += ["--dest-creds", dest_creds] if dest_creds else []
        return self.run([*args, *extra, src, dest], timeout=timeout)

    def push(self, oci_ref: str, dest: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Push an ``oci:DIR:TAG`` layout to ``HOST/repo:tag``."""
        return self.copy(oci_ref, f"docker://{dest}", **kwargs)  # type: ignore[arg-type]

    def pull(self, src: str, oci_dir: Path, tag: str = "latest", **kwargs: object) -> subprocess.CompletedProcess[str]:
        """Pull ``HOST/repo:tag`` into an OCI layout ``oci_dir:tag``."""
        return self.copy(f"docker://{src}", f"oci:{oci_dir}:{tag}", **kwargs)  # type: ignore[arg-type]

    def inspect_digest(
        self, ref: str, *, creds: str | None = None, plain_http: bool = False
    ) -> subprocess.CompletedProcess[str]:
        """Manifest digest of ``HOST/repo:tag`` in stdout (``sha256:...``)."""
        args = ["skopeo", "inspect", "--authfile", str(self.authfile), *self._tls("", plain_http)]
        args += ["--creds", creds] if creds else []
        return self.run([*args, "--format", "{{.Digest}}", f"docker://{ref}"])

    def delete(self, ref: str, *, creds: str | None = None) -> subprocess.CompletedProcess[str]:
        args = ["skopeo", "delete", "--authfile", str(self.authfile), *self._tls("", False)]
        args += ["--creds", creds] if creds else []
        return self.run([*args, f"docker://{ref}"])


class Podman(_Client):
    """podman as root with private vfs storage (no overlay, no systemd here)."""

    def __init__(self, workdir: Path, cert_dir: Path | None) -> None:
        super().__init__(workdir, cert_dir)
        self.root = workdir / "root"
        # podman 4.3 refuses a runroot longer than 50 characters, and pytest's
        # tmp paths are longer: use a short dir of our own (see cleanup()).
        self.runroot = Path(tempfile.mkdtemp(prefix="pr", dir="/tmp"))
        self.tmpdir = workdir / "tmp"
        for folder in (self.root, self.runroot, self.tmpdir):
            folder.mkdir(parents=True, exist_ok=True)
        # Empty storage.conf: ignore any host /etc/containers/storage.conf options.
        self.storage_conf = workdir / "storage.conf"
        self.storage_conf.write_text(
            f'[storage]\ndriver = "vfs"\ngraphroot = "{self.root}"\nrunroot = "{self.runroot}"\n'
        )

    def cleanup(self) -> None:
        """Remove the short runroot and the (large, vfs) storage."""
        shutil.rmtree(self.runroot, ignore_errors=True)
        shutil.rmtree(self.root, ignore_errors=True)

    def env(self) -> dict[str, str]:
        env = super().env()
        env["CONTAINERS_STORAGE_CONF"] = str(self.storage_conf)
        return env

    def base(self) -> list[str]:
        return [
            "podman",
            "--root",
            str(self.root),
            "--runroot",
            str(self.runroot),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
            "--tmpdir",
            str(self.tmpdir),
        ]

    def login(self, host: str, user: str, password: str) -> subprocess.CompletedProcess[str]:
        return self.run(
            [
                *self.base(),
                "login",
                "--authfile",
                str(self.authfile),
                *self._tls("", False),
                "-u",
                user,
                "--password-stdin",
                host,
            ],
            stdin=password,
        )

    def logout(self, host: str) -> subprocess.CompletedProcess[str]:
        return self.run([*self.base(), "logout", "--authfile", str(self.authfile), host])

    def load_oci(self, oci_ref: str, name: str) -> subprocess.CompletedProcess[str]:
        """Copy an ``oci:DIR:TAG`` layout into local storage, then tag it ``name``."""
        pulled = self.run([*self.base(), "pull", "-q", oci_ref])
        if pulled.returncode != 0:
            return pulled
        return self.run([*self.base(), "tag", pulled.stdout.strip().splitlines()[-1], name])

    def push(
        self,
        local: str,
        dest: str,
        *,
        creds: str | None = None,
        digestfile: Path | None = None,
        plain_http: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        args = [*self.base(), "push", "--authfile", str(self.authfile), *self._tls("", plain_http)]
        args += ["--creds", creds] if creds else []
        args += ["--digestfile", str(digestfile)] if digestfile else []
        return self.run([*args, local, f"docker://{dest}"])

    def pull(self, ref: str, *, creds: str | None = None, plain_http: bool = False) -> subprocess.CompletedProcess[str]:
        args = [*self.base(), "pull", "--authfile", str(self.authfile), *self._tls("", plain_http)]
        args += ["--creds", creds] if creds else []
        return self.run([*args, f"docker://{ref}"])

    def inspect_digest(self, ref: str) -> subprocess.CompletedProcess[str]:
        """Manifest digest of a LOCAL image in stdout."""
        return self.run([*self.base(), "image", "inspect", "--format", "{{.Digest}}", ref])

    def rmi(self, *refs: str) -> subprocess.CompletedProcess[str]:
        return self.run([*self.base(), "rmi", "-f", *refs])


class Docker(_Client):
    """docker CLI bound to a test daemon socket and a private DOCKER_CONFIG.

    Trust for TLS registries lives in the daemon (/etc/docker/certs.d), not
    here; see :class:`tests.support.dockerd.DockerDaemon.trust`.
    """

    def __init__(self, workdir: Path, socket: Path) -> None:
        super().__init__(workdir, None)
        self.socket = socket
        config = self.docker_config / "config.json"
        if not config.exists():
            config.write_text(json.dumps({"auths": {}}))

    def env(self) -> dict[str, str]:
        env = super().env()
        env["DOCKER_HOST"] = f"unix://{self.socket}"
        return env

    def cli(
        self, *args: str, stdin: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> subprocess.CompletedProcess[str]:
        return self.run([docker_cli(), *args], stdin=stdin, timeout=timeout)

    def login(self, host: str, user: str, password: str) -> subprocess.CompletedProcess[str]:
        return self.cli("login", "-u", user, "--password-stdin", host, stdin=password)

    def logout(self, host: str) -> subprocess.CompletedProcess[str]:
        return self.cli("logout", host)

    def load(self, archive: Path) -> subprocess.CompletedProcess[str]:
        return self.cli("load", "-i", str(archive))

    def tag(self, src: str, dest: str) -> subprocess.CompletedProcess[str]:
        return self.cli("tag", src, dest)

    def push(self, ref: str) -> subprocess.CompletedProcess[str]:
        return self.cli("push", ref)

    def pull(self, ref: str) -> subprocess.CompletedProcess[str]:
        return self.cli("pull", ref)

    def rmi(self, *refs: str) -> subprocess.CompletedProcess[str]:
        return self.cli("rmi", "-f", *refs)

    def repo_digests(self, ref: str) -> list[str]:
        """``RepoDigests`` of a local image (``HOST/repo@sha256:...`` entries)."""
        result = must(self.cli("image", "inspect", "--format", "{{json .RepoDigests}}", ref))
        return list(json.loads(result.stdout) or [])

    def inspect_digest(self, ref: str) -> subprocess.CompletedProcess[str]:
        """First RepoDigest's digest part in stdout, like the other clients."""
        result = self.cli("image", "inspect", "--format", "{{json .RepoDigests}}", ref)
        if result.returncode == 0:
            digests = json.loads(result.stdout) or []
            result.stdout = digests[0].split("@", 1)[1] if digests else ""
        return result
