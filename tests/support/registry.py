"""The real backend: Debian's ``docker-registry`` (CNCF distribution 2.8).

The proxy's whole job is to sit in front of this exact program, so tests run
it for real: plain HTTP on a private loopback port, filesystem storage in a
temp dir, deletes enabled, no auth of its own.
"""

from __future__ import annotations

import atexit
import hashlib
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.support.ports import free_port

REGISTRY_BIN = "docker-registry"


@dataclass(frozen=True)
class BlobCheck:
    """One blob found on disk and whether its content matches its name."""

    digest: str
    path: Path
    size: int
    ok: bool


class Registry:
    """A ``docker-registry serve`` process that can be stopped and restarted.

    Port and storage stay the same across restarts so tests can simulate a
    backend outage and recovery without reconfiguring the proxy.
    """

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.workdir = workdir
        self.port = port if port is not None else free_port()
        self.storage = workdir / "storage"
        self.config_path = workdir / "registry.yml"
        self.log_path = workdir / "registry.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._secret = secrets.token_hex(16)
        atexit.register(self._kill_quietly)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host_port(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _config(self) -> dict[str, object]:
        return {
            "version": 0.1,
            "log": {"level": "info", "formatter": "text", "accesslog": {"disabled": False}},
            "storage": {
                "filesystem": {"rootdirectory": str(self.storage)},
                "delete": {"enabled": True},
                # No background purge of upload dirs while a test runs.
                "maintenance": {"uploadpurging": {"enabled": False}},
            },
            "http": {
                "addr": self.host_port,
                # Fixed secret: upload session state stays valid across a
                # restart, as in a real deployment with http.secret set.
                "secret": self._secret,
                "headers": {"X-Content-Type-Options": ["nosniff"]},
            },
        }

    def start(self, timeout: float = 20.0) -> None:
        """Start (or restart) the registry and wait for ``GET /v2/`` == 200."""
        if self.running:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self._config()))
        log = self.log_path.open("ab")
        try:
            self._proc = subprocess.Popen(
                [REGISTRY_BIN, "serve", str(self.config_path)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited {self._proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/v2/", timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"docker-registry not ready within {timeout} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the registry (SIGTERM, then SIGKILL); storage is kept."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """SIGKILL: a crash, not a drain (SIGTERM lets the registry finish transfers in flight)."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def _kill_quietly(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """Stop the backend for the duration of a block, always restart after."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def blobs(self) -> list[BlobCheck]:
        """Every blob in storage, each checked against its sha256 name."""
        return verify_blobs(self.storage)


def _blob_root(storage: Path) -> Path:
    return storage / "docker" / "registry" / "v2" / "blobs" / "sha256"


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def verify_blobs(storage: Path) -> list[BlobCheck]:
    """List all blobs under a registry storage root and hash-check each one.

    Layout is ``docker/registry/v2/blobs/sha256/<xx>/<hex>/data``. A proxy
    that corrupted or truncated an upload would leave a blob whose content
    does not hash to its name (the registry verifies on PUT, but this makes
    the test independent of that).
    """
    root = _blob_root(storage)
    if not root.is_dir():
        return []
    checks: list[BlobCheck] = []
    for data in sorted(root.glob("*/*/data")):
        hexname = data.parent.name
        checks.append(
            BlobCheck(
                digest=f"sha256:{hexname}",
                path=data,
                size=data.stat().st_size,
                ok=_sha256_file(data) == hexname,
            )
        )
    return checks


def bad_blobs(storage: Path) -> list[BlobCheck]:
    """Only the blobs whose content does not match their digest."""
    return [check for check in verify_blobs(storage) if not check.ok]
