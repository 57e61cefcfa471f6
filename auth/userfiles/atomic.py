"""Locked, atomic read-modify-write of small text files (htpasswd, group file).

Why: the proxy re-reads these files while it runs, and several `user`/`group`
CLI calls may run at once (scripts, config management). A reader must never see
a half-written file, and two writers must never lose each other's update. So:

* every rewrite takes an exclusive ``flock`` on a sidecar ``<path>.lock`` file.
  The lock lives on a separate file because the data file itself is replaced by
  rename, and a lock on a replaced inode would protect nothing. ``flock`` (not
  ``lockf``) is used because its locks belong to the open file description, so
  it also serialises threads of one process, not only separate processes;
* the new content goes to a temp file in the same directory (same filesystem, so
  ``os.replace`` is atomic), is fsynced, gets the old file's mode (and owner,
  when permitted), and is renamed over the old one; the directory is fsynced so
  the rename survives a crash.

Lines are handled without their line endings and written back with ``\\n``.
Undecodable bytes survive unchanged (``surrogateescape``), so a rewrite never
mangles lines it does not understand. No aiohttp import: this is ``auth``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

NEW_FILE_MODE = 0o640
"""Mode of files created from scratch: owner rw, group r (e.g. the proxy's group)."""

LOCK_FILE_MODE = 0o640
"""The sidecar ``.lock`` file stays behind (deleting it would race); it is always empty."""

_ENCODING = "utf-8"
_ERRORS = "surrogateescape"

Transform = Callable[[list[str]], list[str]]


def read_lines(path: Path | str) -> list[str]:
    """Return the lines of ``path`` without line endings; a missing file is empty."""
    try:
        with open(path, encoding=_ENCODING, errors=_ERRORS, newline="") as fh:
            return fh.read().splitlines()
    except FileNotFoundError:
        return []


def rewrite(path: Path | str, transform: Transform) -> list[str]:
    """Apply ``transform`` to the lines of ``path`` under a lock and save atomically.

    ``transform`` gets a fresh list read while the lock is held, so decisions it
    makes (e.g. "user already exists") are race-free. If it raises, nothing is
    written and the exception propagates. If it returns the same lines, the file
    is left alone (a missing file is then not created). Returns the new lines.

    A symlinked ``path`` is resolved first so the link's target is updated and
    the link itself is kept.
    """
    target = Path(os.path.realpath(path))
    lock_path = target.with_name(target.name + ".lock")
    # Read-only is enough for flock, so anyone allowed to read the lock can take it.
    lock_fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, LOCK_FILE_MODE)
    try:
        fcntl.flock(lock_fd, fcntl.LOCK_EX)
        old = read_lines(target)
        new = list(transform(list(old)))
        if new != old:
            _replace(target, new)
        return new
    finally:
        os.close(lock_fd)  # closing the last descriptor releases the flock


def _replace(target: Path, lines: list[str]) -> None:
    """Write ``lines`` to a temp file next to ``target`` and rename it over."""
    try:
        st: os.stat_result | None = os.stat(target)
    except FileNotFoundError:
        st = None
    data = "".join(line + "\n" for line in lines).encode(_ENCODING, _ERRORS)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            if st is not None:
                _copy_owner(fh.fileno(), st)  # before chmod: chown may clear mode bits
            os.fchmod(fh.fileno(), NEW_FILE_MODE if st is None else st.st_mode & 0o7777)
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(target.parent)


def _copy_owner(fd: int, st: os.stat_result) -> None:
    """Keep the old owner/group (e.g. root:proxy) when we are allowed to.

    Only root may give a file away; for other users a mismatch just means the
    file becomes theirs, which is what any editor would do too.
    """
    mine = os.fstat(fd)
    if (mine.st_uid, mine.st_gid) == (st.st_uid, st.st_gid):
        return
    with contextlib.suppress(PermissionError):
        os.fchown(fd, st.st_uid, st.st_gid)


def _fsync_dir(directory: Path) -> None:
    """Persist the rename itself; some filesystems refuse, which is harmless."""
    try:
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)
