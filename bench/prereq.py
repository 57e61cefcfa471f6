"""Prerequisite checks and version capture.

The bench installs nothing: a missing tool is reported with the Debian package to
apt-get install, and the run stops before any server is started.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from dataclasses import dataclass

# executable -> (Debian package, targets that need it; empty = always needed)
_TOOLS: dict[str, tuple[str, tuple[str, ...]]] = {
    "docker-registry": ("docker-registry", ()),
    "curl": ("curl", ()),
    "hey": ("hey", ()),
    "wrk": ("wrk", ()),
    "htpasswd": ("apache2-utils", ()),
    "openssl": ("openssl", ()),
    "apache2": ("apache2", ("apache",)),
    "nginx": ("nginx", ("nginx",)),
}
_PY_MODULES = ("aiohttp", "trustme", "yaml")


def missing_packages(targets: tuple[str, ...]) -> list[str]:
    """Debian packages whose executables are not on PATH (or in /usr/sbin)."""
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    missing: list[str] = []
    for exe, (package, needed_by) in _TOOLS.items():
        if needed_by and not set(needed_by) & set(targets):
            continue
        if shutil.which(exe, path=path) is None and package not in missing:
            missing.append(package)
    return missing


def missing_python_modules() -> list[str]:
    missing = []
    for name in _PY_MODULES:
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    return missing


def _run(cmd: list[str]) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    text = (proc.stdout + proc.stderr).strip()
    return text


def _first_line(text: str) -> str:
    return text.splitlines()[0] if text else "(no output)"


def _dpkg_version(package: str) -> str:
    out = _run(["dpkg-query", "-W", "-f", "${Version}", package])
    return out if out and "no packages found" not in out else "not installed"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> str:
    try:
        with open("/proc/meminfo") as fh:
            kib = int(fh.readline().split()[1])
        return f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        return "unknown"


@dataclass(frozen=True)
class Versions:
    """Version strings for RESULTS.md, as the commands print them."""

    lines: tuple[tuple[str, str], ...]
    cores: int


def collect_versions(proxy_version: str) -> Versions:
    import aiohttp  # local: only needed once, keeps module import cheap

    wrk = _run(["wrk", "-v"])
    wrk_line = next((ln for ln in wrk.splitlines() if ln.startswith("wrk")), _first_line(wrk))
    lines = [
        ("OS", _first_line(_run(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]))),
        ("kernel", platform.release()),
        ("CPU", f"{_cpu_model()}, {os.cpu_count()} cores (os.cpu_count), RAM {_mem_gib()}"),
        ("apache2 -v", " / ".join(_run(["apache2", "-v"]).splitlines())),
        ("nginx -v", _first_line(_run(["nginx", "-v"]))),
        ("docker-registry --version", _first_line(_run(["docker-registry", "--version"]))),
        ("openssl version", _first_line(_run(["openssl", "version"]))),
        ("python", sys.version.split()[0] + f" ({sys.executable})"),
        ("aiohttp", aiohttp.__version__),
        ("curl --version", _first_line(_run(["curl", "--version"]))),
        ("wrk -v", wrk_line),
        ("hey (dpkg; hey has no --version)", _dpkg_version("hey")),
        ("proxy", proxy_version),
    ]
    for pkg in ("apache2", "nginx", "docker-registry", "curl", "wrk", "hey", "libssl3"):
        lines.append((f"dpkg {pkg}", _dpkg_version(pkg)))
    return Versions(tuple(lines), os.cpu_count() or 0)


def proxy_version_string(repo_root: str) -> str:
    """Best-effort identification of the proxy under test (read-only git queries)."""
    head = _run(["git", "-C", repo_root, "rev-parse", "--short", "HEAD"])
    dirty = _run(["git", "-C", repo_root, "status", "--porcelain", "--", "proxy", "auth"])
    state = "with uncommitted changes in proxy/ or auth/" if dirty else "clean"
    return f"git {_first_line(head)} ({state})"


def openssl_speed_mbps() -> tuple[float | None, str]:
    """AES-256-GCM, 16 KiB blocks, one core: the TLS ceiling for a single stream."""
    out = _run(["openssl", "speed", "-evp", "aes-256-gcm", "-bytes", "16384", "-seconds", "2"])
    for line in out.splitlines():
        low = line.lower()
        if low.startswith("aes-256-gcm") and line.rstrip().endswith("k"):
            kbytes = float(line.split()[-1].rstrip("k"))
            return kbytes * 1000 / 1e6, line.strip()
    return None, _first_line(out)
