"""htpasswd and group files made by Apache's own ``htpasswd`` tool.

Using the real tool (bcrypt, ``-B``) proves the proxy reads files exactly as
an operator migrating from Apache would hand them over.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

PUSHER_USER = "mark"
PUSHER_PASSWORD = "pusherpwd"
READER_USER = "reader"
READER_PASSWORD = "readerpwd"
PUSH_GROUP = "pusher"


@dataclass(frozen=True)
class AuthFiles:
    """The two files plus the known credentials, for assertions."""

    htpasswd: Path
    groups: Path
    pusher: tuple[str, str] = (PUSHER_USER, PUSHER_PASSWORD)
    reader: tuple[str, str] = (READER_USER, READER_PASSWORD)

    @property
    def pusher_creds(self) -> str:
        """``user:password`` form for skopeo/podman ``--creds``."""
        return ":".join(self.pusher)

    @property
    def reader_creds(self) -> str:
        return ":".join(self.reader)


def htpasswd_add(path: Path, user: str, password: str) -> None:
    """Add/replace a bcrypt entry with Apache's htpasswd (``-c`` if the file is new)."""
    create = [] if path.exists() else ["-c"]
    subprocess.run(
        ["htpasswd", "-B", *create, "-b", str(path), user, password],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )


def write_auth_files(directory: Path) -> AuthFiles:
    """users.htpasswd (mark, reader) and users.groups (``pusher: mark``)."""
    directory.mkdir(parents=True, exist_ok=True)
    htpasswd = directory / "users.htpasswd"
    groups = directory / "users.groups"
    htpasswd.unlink(missing_ok=True)
    htpasswd_add(htpasswd, PUSHER_USER, PUSHER_PASSWORD)
    htpasswd_add(htpasswd, READER_USER, READER_PASSWORD)
    groups.write_text(f"{PUSH_GROUP}: {PUSHER_USER}\n")
    return AuthFiles(htpasswd=htpasswd, groups=groups)
