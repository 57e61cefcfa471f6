"""Run the real proxy as a subprocess, exactly as an operator would.

Integration tests exercise ``python -m proxy serve --config FILE`` (not an
in-process app) so config loading, TLS setup, signal handling and shutdown
are all part of what is tested.
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from proxy.config import connect_host, parse_host_port
from tests.support.ports import port_open

REPO_ROOT = Path(__file__).resolve().parents[2]


def split_listen(listen: str) -> tuple[str, int]:
    """``host:port`` -> (connect host, port); a wildcard host is reached via 127.0.0.1."""
    host, port = parse_host_port(listen)
    return connect_host(host), port


class ProxyProcess:
    """One proxy process with its config and log in ``workdir``."""

    def __init__(self, config: dict[str, Any], workdir: Path) -> None:
        self.config = config
        self.workdir = workdir
        self.config_path = workdir / "proxy.yml"
        self.log_path = workdir / "proxy.log"
        self.host, self.port = split_listen(str(config["listen"]))
        self._proc: subprocess.Popen[bytes] | None = None
        atexit.register(self._kill_quietly)

    @property
    def tls(self) -> bool:
        return self.config.get("tls") not in (None, False, "off")

    @property
    def host_port(self) -> str:
        """What clients put in image references, e.g. ``127.0.0.1:41234``."""
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host_port}"

    @property
    def admin_url(self) -> str | None:
        """``http://host:port`` of the admin listener (metrics, health), None when it is off."""
        admin = self.config.get("admin")
        listen = admin.get("listen") if isinstance(admin, dict) else admin
        if listen in (None, False, "off"):
            return None if admin is not None else "http://127.0.0.1:9102"
        host, port = split_listen(str(listen))
        return f"http://{host}:{port}"

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("proxy not started")
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        return self.config_path

    def command(self) -> list[str]:
        return [sys.executable, "-m", "proxy", "serve", "--config", str(self.config_path)]

    def start(self, timeout: float = 20.0) -> ProxyProcess:
        """Write proxy.yml, start the process, wait until it accepts TCP connections."""
        self.write_config()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                self.command(),
                cwd=self.workdir,  # relative config paths must not depend on cwd
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while not port_open(self.host, self.port, timeout=0.5):
            if self._proc.poll() is not None:
                raise RuntimeError(f"proxy exited {self._proc.returncode} during startup:\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                self.stop(signal.SIGKILL)
                raise TimeoutError(f"proxy did not listen on {self.host_port} within {timeout} s:\n{self.log_tail()}")
            time.sleep(0.05)
        return self

    def send_signal(self, sig: int) -> None:
        if self._proc is None:
            raise RuntimeError("proxy not started")
        self._proc.send_signal(sig)

    def wait(self, timeout: float) -> int:
        """Wait for exit; raises subprocess.TimeoutExpired if still running."""
        if self._proc is None:
            raise RuntimeError("proxy not started")
        return self._proc.wait(timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40.0) -> int | None:
        """Signal the proxy and wait; SIGKILL if it outlives ``timeout``. Returns the exit code."""
        proc = self._proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(sig)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def _kill_quietly(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])
