"""Throwaway workspace: TLS CA + server cert, htpasswd/group files, blob files.

Everything is created under one temporary directory so the system-wide Apache and
nginx configuration is never touched, and cleanup is a single rmtree.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import trustme

from bench.settings import MIB

REPO = "bench/layers"  # every blob and the manifest live in this repository


@dataclass(frozen=True)
class User:
    name: str
    password: str
    cost: int
    groups: tuple[str, ...]


USERS = (
    User("mark", "pusherpwd", 5, ("pusher",)),
    User("mark12", "pusherpwd12", 12, ("pusher",)),
    User("reader", "readerpwd", 5, ()),
)


def user(name: str) -> User:
    return next(u for u in USERS if u.name == name)


@dataclass(frozen=True)
class Blob:
    path: Path
    size: int
    digest: str  # "sha256:<hex>"


@dataclass(frozen=True)
class Workspace:
    root: Path
    ca_cert: Path
    server_cert: Path
    server_key: Path
    htpasswd: Path
    groups: Path


def make_workspace(root: Path) -> Workspace:
    """CA, an RSA-2048 cert for localhost/127.0.0.1 (as in the anchors), users and groups."""
    root.chmod(0o755)  # nginx/apache workers run as nobody/www-data when we are root
    ca = trustme.CA()
    leaf = ca.issue_cert("localhost", "127.0.0.1", key_type=trustme.KeyType.RSA)
    ws = Workspace(
        root=root,
        ca_cert=root / "ca.pem",
        server_cert=root / "server.crt",
        server_key=root / "server.key",
        htpasswd=root / "users.htpasswd",
        groups=root / "users.groups",
    )
    ca.cert_pem.write_to_path(str(ws.ca_cert))
    ws.server_cert.write_bytes(b"".join(p.bytes() for p in leaf.cert_chain_pems))
    leaf.private_key_pem.write_to_path(str(ws.server_key))
    _write_users(ws)
    for path in (ws.ca_cert, ws.server_cert, ws.server_key, ws.htpasswd, ws.groups):
        path.chmod(0o644)
    return ws


def _write_users(ws: Workspace) -> None:
    """Use Apache's own htpasswd -B so all three servers read an identical file."""
    ws.htpasswd.write_text("")
    for u in USERS:
        subprocess.run(
            ["htpasswd", "-b", "-B", "-C", str(u.cost), str(ws.htpasswd), u.name, u.password],
            check=True,
            capture_output=True,
        )
    members: dict[str, list[str]] = {}
    for u in USERS:
        for group in u.groups:
            members.setdefault(group, []).append(u.name)
    ws.groups.write_text("".join(f"{g}: {' '.join(m)}\n" for g, m in members.items()))


def make_blob(path: Path, size_mib: int) -> Blob:
    """A blob of `size_mib` MiB: one random MiB repeated, with a per-MiB counter.

    Cheap to generate (no 2 GiB of urandom) yet no two MiB are identical; nothing in the
    path compresses, so the content pattern does not affect the measurement.
    """
    block = bytearray(os.urandom(MIB))
    digest = hashlib.sha256()
    with open(path, "wb") as fh:
        for i in range(size_mib):
            block[:8] = i.to_bytes(8, "big")
            fh.write(block)
            digest.update(block)
    return Blob(path, size_mib * MIB, "sha256:" + digest.hexdigest())


def make_small(path: Path, data: bytes) -> Blob:
    path.write_bytes(data)
    return Blob(path, len(data), "sha256:" + hashlib.sha256(data).hexdigest())
