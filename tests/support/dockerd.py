"""A private Docker daemon (containerd + dockerd) for docker-client tests.

No systemd and no running daemon exist here, and tests must not touch a
developer's real one, so each session starts its own pair with every path
(state, sockets, data root, pidfile) under one short temp dir: unix socket
paths are limited to 108 bytes. Networking is off (no iptables, no bridge)
because tests only need push/pull to loopback; storage is vfs because
overlay-in-container is not available everywhere.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.support.clients import Docker, docker_cli

CERTS_D = Path("/etc/docker/certs.d")


class DockerDaemon:
    """containerd + dockerd with their own config; ``stop()`` always cleans up."""

    def __init__(self, base: Path | None = None) -> None:
        self.base = base if base is not None else Path(tempfile.mkdtemp(prefix="dk", dir="/tmp"))
        self.containerd_sock = self.base / "ctd.sock"
        self.docker_sock = self.base / "d.sock"
        self.containerd_log = self.base / "containerd.log"
        self.dockerd_log = self.base / "dockerd.log"
        self._containerd: subprocess.Popen[bytes] | None = None
        self._dockerd: subprocess.Popen[bytes] | None = None
        self._trusted: list[Path] = []
        self._made_certs_d = False
        atexit.register(self.stop)

    def _containerd_config(self) -> str:
        base = self.base
        return "\n".join(
            [
                "version = 2",
                f'root = "{base}/ctd-root"',
                f'state = "{base}/ctd-state"',
                'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
                "[grpc]",
                f'  address = "{self.containerd_sock}"',
                "[ttrpc]",
                f'  address = "{base}/ctd.ttrpc"',
                "[debug]",
                '  address = ""',
                "[metrics]",
                '  address = ""',
                '[plugins."io.containerd.internal.v1.opt"]',
                f'  path = "{base}/ctd-opt"',
                "",
            ]
        )

    def start(self, timeout: float = 60.0) -> None:
        """Start both daemons and wait until ``docker version`` answers."""
        if self._dockerd is not None:
            return
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout: float) -> None:
        base = self.base
        base.mkdir(parents=True, exist_ok=True)
        config = base / "containerd.toml"
        config.write_text(self._containerd_config())
        with self.containerd_log.open("ab") as log:
            self._containerd = subprocess.Popen(
                ["containerd", "--config", str(config)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait(lambda: self.containerd_sock.exists(), timeout, "containerd socket")

        daemon_json = base / "daemon.json"
        # Own daemon.json: ignore any host one, and keep the libtrust key
        # (which 20.10 writes to /etc/docker/key.json by default) in our dir.
        daemon_json.write_text(json.dumps({"deprecated-key-path": str(base / "key.json")}))
        with self.dockerd_log.open("ab") as log:
            self._dockerd = subprocess.Popen(
                [
                    "dockerd",
                    "--config-file",
                    str(daemon_json),
                    "--iptables=false",
                    "--ip6tables=false",
                    "--bridge=none",
                    "--storage-driver=vfs",
                    "--data-root",
                    str(base / "data"),
                    "--exec-root",
                    str(base / "exec"),
                    "-H",
                    f"unix://{self.docker_sock}",
                    "--containerd",
                    str(self.containerd_sock),
                    "--pidfile",
                    str(base / "dockerd.pid"),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait(self._answers, timeout, "docker version")

    def _answers(self) -> bool:
        result = subprocess.run(
            [docker_cli(), "-H", f"unix://{self.docker_sock}", "version", "--format", "{{.Server.Version}}"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return result.returncode == 0

    def _wait(self, check: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc in (("containerd", self._containerd), ("dockerd", self._dockerd)):
                if proc is not None and proc.poll() is not None:
                    raise RuntimeError(f"{name} exited {proc.returncode} while waiting for {what}:\n{self.log_tail()}")
            if check():  # type: ignore[operator]
                return
            time.sleep(0.2)
        raise TimeoutError(f"{what} not ready within {timeout} s:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        parts = []
        for log in (self.containerd_log, self.dockerd_log):
            if log.exists():
                tail = log.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {log.name}\n" + "\n".join(tail))
        return "\n".join(parts)

    def client(self, workdir: Path) -> Docker:
        """A docker CLI wrapper bound to this daemon with a private DOCKER_CONFIG."""
        return Docker(workdir, self.docker_sock)

    def trust(self, host_port: str, ca_cert: Path) -> Path:
        """Install ``ca_cert`` as /etc/docker/certs.d/HOST:PORT/ca.crt (removed on stop).

        dockerd has no per-daemon certs dir option; it re-reads this folder
        on every registry access, so trust can be added after start. Note that
        dockerd treats 127.0.0.0/8 as an insecure registry: it skips
        certificate verification there and may fall back to plain HTTP.
        """
        folder = CERTS_D / host_port
        if not CERTS_D.exists():
            self._made_certs_d = True
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ca_cert, folder / "ca.crt")
        self._trusted.append(folder)
        return folder

    def untrust(self, host_port: str) -> None:
        folder = CERTS_D / host_port
        shutil.rmtree(folder, ignore_errors=True)
        self._trusted = [path for path in self._trusted if path != folder]

    def stop(self) -> None:
        """Stop dockerd then containerd (SIGTERM, SIGKILL after 20 s), remove files."""
        for proc in (self._dockerd, self._containerd):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self._dockerd = self._containerd = None
        for folder in self._trusted:
            shutil.rmtree(folder, ignore_errors=True)
        self._trusted.clear()
        if self._made_certs_d:
            with contextlib.suppress(OSError):
                CERTS_D.rmdir()  # only if we created it and it is empty again
            self._made_certs_d = False
        shutil.rmtree(self.base, ignore_errors=True)
