"""A docker-registry with its own htpasswd auth: what Debian's stock config.yml starts.

``/etc/docker/registry/config.yml`` as the ``docker-registry`` package ships it
has an ``auth: htpasswd:`` section, so ``GET /v2/`` answers 401 to the proxy
and every request through it fails. Tests start this one beside the session's
normal registry to prove check-config and ``/readyz`` say so.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from tests.support.authfiles import htpasswd_add
from tests.support.registry import Registry

REGISTRY_USER = ("registry-admin", "registrypwd")


class AuthRegistry(Registry):
    """The same registry with ``auth: htpasswd:`` (bcrypt, written by Apache's htpasswd as the registry needs)."""

    def _config(self) -> dict[str, object]:
        config = super()._config()
        config["auth"] = {"htpasswd": {"realm": "basic-realm", "path": str(self.workdir / "registry.htpasswd")}}
        return config

    def start(self, timeout: float = 20.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        htpasswd = self.workdir / "registry.htpasswd"
        if not htpasswd.exists():
            htpasswd_add(htpasswd, *REGISTRY_USER)
        super().start(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Ready when ``GET /v2/`` answers 401: the registry's own challenge."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise RuntimeError(f"docker-registry exited {self._proc.returncode}:\n{self.log_tail()}")
            try:
                urllib.request.urlopen(self.url + "/v2/", timeout=2).close()
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        self.stop()
        raise TimeoutError(f"docker-registry not ready within {timeout} s:\n{self.log_tail()}")
