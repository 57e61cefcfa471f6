"""The pid file: which process serves a config, so ``reload`` can signal exactly that one.

``pidof -s registry-auth-proxy`` finds nothing (the process is a Python
interpreter) or, with ``-x``, picks any instance on the host. The pid file
belongs to one config (``pid_file``, default beside it), so ``reload
--config X`` signals the instance started with X and no other. Standard
library only: the CLI uses it without importing the server.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

__all__ = ["InstanceError", "claim", "live_pid", "release", "signal_instance"]


class InstanceError(Exception):
    """No instance to signal, or another one already owns the pid file; ``str()`` is the line to show."""


def _is_ours(pid: int) -> bool:
    """A live process whose command line is a ``serve`` of this program (not a recycled pid)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user: look at its command line
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"serve" in argv and any(b"registry-auth-proxy" in a or a == b"proxy" for a in argv)


def live_pid(path: Path) -> int | None:
    """The pid in ``path`` if that process is a running instance; None for no file, garbage or a stale pid."""
    try:
        pid = int(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return pid if pid > 0 and _is_ours(pid) else None


def claim(path: Path) -> None:
    """Write our pid; refuse when a running instance already owns the file (two serves of one config)."""
    other = live_pid(path)
    if other is not None and other != os.getpid():
        raise InstanceError(f"{path}: another instance (pid {other}) is serving this config; "
                            f"stop it or set pid_file to another path")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(f"{os.getpid()}\n", encoding="ascii")
    os.replace(tmp, path)


def release(path: Path) -> None:
    """Remove the file if it is still ours (a second, refused instance must not remove the first's)."""
    try:
        if int(path.read_text(encoding="ascii").strip()) == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def signal_instance(path: Path | None, sig: int = signal.SIGHUP) -> int:
    """Send ``sig`` to the instance of this config; its pid, or InstanceError saying why not."""
    if path is None:
        raise InstanceError("pid_file is off in this config: use `systemctl reload registry-auth-proxy` "
                            "or kill -HUP the serving process")
    pid = live_pid(path)
    if pid is None:
        raise InstanceError(f"no running instance for this config ({path} is missing or stale): "
                            "is `registry-auth-proxy serve` running with this config?")
    os.kill(pid, sig)
    return pid
