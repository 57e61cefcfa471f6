"""Shared fixtures: real registry, TLS CA, clients, docker daemon, proxy processes.

Expensive things (registry, docker daemon, CA) live for the whole session;
everything a test can dirty (credentials, client storage, proxy config)
is per test.
"""

from __future__ import annotations

import copy
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.authfiles import AuthFiles, write_auth_files
from tests.support.clients import Docker, Podman, Skopeo
from tests.support.dockerd import DockerDaemon
from tests.support.image import OciImage, write_oci_image
from tests.support.ports import free_port
from tests.support.proxyproc import ProxyProcess
from tests.support.registry import Registry
from tests.support.tap import Tap
from tests.support.tlsfiles import TlsFiles, write_tls_files

DEFAULT_ACCESS: dict[str, Any] = {"pull": "anyone", "push": ["pusher"], "delete": ["pusher"]}
INTEGRATION = Path(__file__).resolve().parent / "integration"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/integration spawns real programs: mark it, so
    ``pytest -m "not integration"`` is the fast in-process loop."""
    for item in items:
        if INTEGRATION in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """Session CA + server cert for localhost/127.0.0.1 (``cert_dir`` has only ca.crt)."""
    return write_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def _registry_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    backend = Registry(tmp_path_factory.mktemp("registry"))
    backend.start()
    try:
        yield backend
    finally:
        backend.stop()


@pytest.fixture
def registry(_registry_process: Registry) -> Iterator[Registry]:
    """The session's docker-registry (plain HTTP, one process for the session).

    A test may ``stop()``/``start()`` it (or use ``with registry.stopped():``);
    it is restarted on the same port and storage after the test either way.
    """
    _registry_process.start()
    yield _registry_process
    _registry_process.start()


@pytest.fixture(scope="session")
def docker_daemon() -> Iterator[DockerDaemon]:
    """Private containerd+dockerd, started on first use, stopped at session end."""
    daemon = DockerDaemon()
    daemon.start()
    try:
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="session")
def auth_files(tmp_path_factory: pytest.TempPathFactory) -> AuthFiles:
    """Pristine htpasswd (mark/pusherpwd, reader/readerpwd) + groups (``pusher: mark``).

    Read-only by convention: proxy_factory copies them into each proxy's dir.
    """
    return write_auth_files(tmp_path_factory.mktemp("auth"))


@pytest.fixture
def oci_image(tmp_path: Path) -> Callable[..., OciImage]:
    """Factory: ``oci_image(tag="latest", layers=2, files_per_layer=3, file_size=65536, seed=None)``."""
    counter = iter(range(1_000_000))

    def make(**kwargs: Any) -> OciImage:
        return write_oci_image(tmp_path / f"oci-{next(counter)}", **kwargs)

    return make


@pytest.fixture
def skopeo(tmp_path: Path, tls_files: TlsFiles) -> Skopeo:
    """skopeo with a private auth file, trusting the test CA."""
    return Skopeo(tmp_path / "skopeo", tls_files.cert_dir)


@pytest.fixture
def podman(tmp_path: Path, tls_files: TlsFiles) -> Iterator[Podman]:
    """podman with private vfs storage and auth file, trusting the test CA."""
    client = Podman(tmp_path / "podman", tls_files.cert_dir)
    yield client
    client.cleanup()


@pytest.fixture
def docker_client(tmp_path: Path, docker_daemon: DockerDaemon) -> Docker:
    """docker CLI bound to the session daemon with a private DOCKER_CONFIG."""
    return docker_daemon.client(tmp_path / "docker")


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursive dict merge; a value of None in ``extra`` deletes the key."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


@pytest.fixture
def proxy_factory(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    tls_files: TlsFiles,
    auth_files: AuthFiles,
) -> Iterator[Callable[..., ProxyProcess]]:
    """Factory that writes a proxy.yml and starts ``python -m proxy serve``.

    ``proxy_factory(backend=None, challenge="bearer", tls=True, access=None,
    overrides=None, start=True) -> ProxyProcess``. ``backend`` defaults to the
    session registry's URL. The htpasswd/groups files are copied next to
    proxy.yml and referenced by RELATIVE path (``users.htpasswd``), which also
    exercises "relative paths resolve against the config's folder".
    ``overrides`` is deep-merged into the config (None deletes a key). All
    proxies are stopped (SIGTERM, then SIGKILL) at teardown.
    """
    started: list[ProxyProcess] = []

    def make(
        *,
        backend: str | None = None,
        challenge: str = "bearer",
        tls: bool = True,
        access: dict[str, Any] | None = None,
        overrides: dict[str, Any] | None = None,
        start: bool = True,
    ) -> ProxyProcess:
        if backend is None:
            backend = request.getfixturevalue("registry").url
        workdir = tmp_path_factory.mktemp("proxy")
        shutil.copyfile(auth_files.htpasswd, workdir / "users.htpasswd")
        shutil.copyfile(auth_files.groups, workdir / "users.groups")
        config: dict[str, Any] = {
            "listen": f"127.0.0.1:{free_port()}",
            "tls": {"cert": str(tls_files.server_cert), "key": str(tls_files.server_key)} if tls else "off",
            "backend": backend,
            "auth": {
                "realm": "basic-realm",
                "htpasswd": "users.htpasswd",
                "groups": "users.groups",
                "challenge": challenge,
                "token": {"ttl": 300, "path": "/token"},
            },
            "access": copy.deepcopy(access if access is not None else DEFAULT_ACCESS),
            "timeouts": {"connect": 10, "read": 300, "grace": 30},
            "admin": {"listen": f"127.0.0.1:{free_port()}"},  # many proxies run at once: never the default 9102
        }
        if overrides:
            config = _merge(config, overrides)
        proc = ProxyProcess(config, workdir)
        started.append(proc)
        return proc.start() if start else proc

    yield make
    for proc in started:
        proc.stop()
        print(f"--- proxy log {proc.log_path}\n{proc.log_tail(60)}")  # shown only if the test failed


@pytest.fixture
def tapped(proxy_factory: Callable[..., ProxyProcess], registry: Registry) -> Iterator[tuple[ProxyProcess, Tap]]:
    """A proxy whose backend traffic passes through a recording TCP tap (proves what the registry saw)."""
    tap = Tap(registry.port).start()
    proxy = proxy_factory(backend=tap.url)
    yield proxy, tap
    tap.stop()
