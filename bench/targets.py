"""The targets: registry direct, our proxy (one process, and `workers: 2`), Apache (seed vhost), nginx (docs recipe).

All of them listen on 127.0.0.1 on free ports, read the same cert/htpasswd/group files,
and (except `direct`) forward to the one registry that `direct` measures.
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench.fixtures import Workspace
from bench.procs import ProcessGroups, log_tail
from bench.settings import BENCH_DIR, REPO_ROOT


class TargetError(RuntimeError):
    """A target could not be started; the bench reports it and goes on with the others."""


@dataclass(frozen=True)
class Target:
    """A running target. `basic_*` is the Basic-challenge instance (only differs for proxy)."""

    name: str
    url: str
    pid: int
    backend_pid: int | None
    basic_url: str
    basic_pid: int

    @property
    def tls(self) -> bool:
        return self.url.startswith("https:")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, proc_poll: object, log: Path, ca: Path, timeout: float = 20.0) -> None:
    """Ready = any HTTP answer on /v2/ (401 counts); fail fast if the process exits."""
    ctx = ssl.create_default_context(cafile=str(ca))
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        code = proc_poll()  # type: ignore[operator]
        if code is not None:
            raise TargetError(f"exited with status {code}:\n{log_tail(log)}")
        try:
            with urllib.request.urlopen(url + "/v2/", timeout=2, context=ctx):
                return
        except urllib.error.HTTPError:
            return
        except (OSError, ssl.SSLError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise TargetError(f"not ready after {timeout:.0f} s ({last}):\n{log_tail(log)}")


def _render(template: str, values: dict[str, str]) -> str:
    text = (BENCH_DIR / "templates" / template).read_text()
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    left = re.findall(r"@[A-Z_]+@", text)
    if left:
        raise TargetError(f"{template}: unfilled placeholders {sorted(set(left))}")
    return text


def _rundir(ws: Workspace, name: str) -> Path:
    path = ws.root / name
    path.mkdir(mode=0o755, exist_ok=True)
    return path


def start_registry(ws: Workspace, pg: ProcessGroups) -> Target:
    port = free_port()
    run = _rundir(ws, "registry")
    config = {
        "version": 0.1,
        "log": {"level": "info", "formatter": "text"},
        "storage": {
            "filesystem": {"rootdirectory": str(run / "data")},
            "delete": {"enabled": True},
            "cache": {"blobdescriptor": "inmemory"},
        },
        "http": {"addr": f"127.0.0.1:{port}", "secret": "bench-fixed-secret"},
    }
    cfg = run / "config.yml"
    cfg.write_text(yaml.safe_dump(config))
    log = run / "registry.log"
    proc = pg.start(["docker-registry", "serve", str(cfg)], log)
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, proc.poll, log, ws.ca_cert)
    return Target("direct", url, proc.pid, None, url, proc.pid)


def _start_proxy_instance(
    ws: Workspace, pg: ProcessGroups, backend: Target, args: tuple[str, ...], challenge: str, workers: int = 1
) -> tuple[str, int]:
    port = free_port()
    run = _rundir(ws, f"proxy-{challenge}" + (f"-w{workers}" if workers > 1 else ""))
    config = {
        "listen": f"127.0.0.1:{port}",
        "tls": {"cert": str(ws.server_cert), "key": str(ws.server_key)},
        "backend": backend.url,
        "auth": {
            "realm": "basic-realm",
            "htpasswd": str(ws.htpasswd),
            "groups": str(ws.groups),
            "challenge": challenge,
        },
        # its own admin port: a fixed default would collide with a demo or a second instance
        "admin": {"listen": f"127.0.0.1:{free_port()}"},
        "workers": workers,  # > 1: a supervisor and its workers; the CPU and RSS are the whole tree's
    }
    cfg = run / "proxy.yml"
    cfg.write_text(yaml.safe_dump(config, sort_keys=False))
    log = run / "proxy.log"
    cmd = [sys.executable, "-m", "proxy", "serve", "--config", str(cfg), *args]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = pg.start(cmd, log, cwd=REPO_ROOT, env=env)
    url = f"https://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc.poll, log, ws.ca_cert)
    except TargetError as exc:
        raise TargetError(f"{challenge}-challenge instance `python {' '.join(cmd[1:])}` {exc}") from None
    return url, proc.pid


def start_proxy(
    ws: Workspace, pg: ProcessGroups, backend: Target, args: tuple[str, ...], workers: int = 1
) -> Target:
    """Two instances: bearer (default; workloads 1-3, 5-7) and basic (workload 4); `proxy-wN` with workers > 1."""
    url, pid = _start_proxy_instance(ws, pg, backend, args, "bearer", workers)
    basic_url, basic_pid = _start_proxy_instance(ws, pg, backend, args, "basic", workers)
    name = "proxy" if workers == 1 else f"proxy-w{workers}"
    return Target(name, url, pid, backend.pid, basic_url, basic_pid)


def _user_directives(kind: str) -> str:
    """Drop root in the workers, as the Debian packages do (the files are world-readable)."""
    if os.geteuid() != 0:
        return ""
    return "User www-data\nGroup www-data" if kind == "apache" else "user www-data;"


def start_apache(ws: Workspace, pg: ProcessGroups, backend: Target) -> Target:
    port = free_port()
    run = _rundir(ws, "apache")
    values = {
        "RUNDIR": str(run),
        "PORT": str(port),
        "CERT": str(ws.server_cert),
        "KEY": str(ws.server_key),
        "BACKEND": backend.url,
        "HTPASSWD": str(ws.htpasswd),
        "GROUPS": str(ws.groups),
        "USER_DIRECTIVES": _user_directives("apache"),
    }
    conf = run / "apache2.conf"
    conf.write_text(_render("apache.conf.tmpl", values))
    log = run / "stderr.log"
    proc = pg.start(["apache2", "-f", str(conf), "-DFOREGROUND"], log)
    url = f"https://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc.poll, log, ws.ca_cert)
    except TargetError as exc:
        raise TargetError(f"apache2: {exc}\n{log_tail(run / 'error.log')}") from None
    return Target("apache", url, proc.pid, backend.pid, url, proc.pid)


def start_nginx(ws: Workspace, pg: ProcessGroups, backend: Target) -> Target:
    port = free_port()
    run = _rundir(ws, "nginx")
    values = {
        "RUNDIR": str(run),
        "PORT": str(port),
        "CERT": str(ws.server_cert),
        "KEY": str(ws.server_key),
        "BACKEND_HOSTPORT": backend.url.removeprefix("http://"),
        "HTPASSWD": str(ws.htpasswd),
        "USER_DIRECTIVES": _user_directives("nginx"),
    }
    conf = run / "nginx.conf"
    conf.write_text(_render("nginx.conf.tmpl", values))
    log = run / "stderr.log"
    cmd = ["nginx", "-c", str(conf), "-p", str(run), "-e", str(run / "error.log"), "-g", "daemon off;"]
    proc = pg.start(cmd, log)
    url = f"https://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc.poll, log, ws.ca_cert)
    except TargetError as exc:
        raise TargetError(f"nginx: {exc}\n{log_tail(run / 'error.log')}") from None
    return Target("nginx", url, proc.pid, backend.pid, url, proc.pid)


def negotiated_tls(url: str, ca: Path) -> str:
    """Protocol and cipher a default Python client gets (what curl gets is the same family)."""
    host, port = url.removeprefix("https://").split(":")
    ctx = ssl.create_default_context(cafile=str(ca))
    try:
        with (
            socket.create_connection((host, int(port)), timeout=5) as raw,
            ctx.wrap_socket(raw, server_hostname=host) as tls,
        ):
            cipher = tls.cipher()
            alpn = tls.selected_alpn_protocol()
        return f"{cipher[1]} {cipher[0]}" + (f", ALPN {alpn}" if alpn else "")
    except (OSError, ssl.SSLError) as exc:
        return f"error: {exc}"
