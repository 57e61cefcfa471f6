"""What passes between the supervisor and a worker: the start-up spec, then JSON lines.

The spec (:class:`WorkerSpec`) is pickled once down the worker's stdin, a
pipe only the supervisor writes: the effective :class:`~proxy.config.Config`
(with what a reload may not change kept as the instance started), and the
numbers of the descriptors the worker inherits.

After that, one socketpair per worker carries one JSON object a line, each
at most :data:`LINE_LIMIT` bytes (a user name is bounded by aiohttp's
8 KiB header limit long before that):

* worker -> supervisor: ``ready``; ``error`` (why start-up failed);
  ``reserve`` / ``failed`` / ``succeeded`` (the login throttle,
  ``proxy.server.workers.throttle``); ``evict`` (a digest deleted through
  it, ``proxy.server.workers.evict``).
* supervisor -> worker: the answer to a ``reserve`` (same ``id``); ``reload``;
  ``evict`` (a digest deleted through another worker).

End of file on either side means the other process is gone: a worker
drains and exits, the supervisor counts the worker's unresolved password
checks as failures and restarts it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from proxy.config import Config

__all__ = ["LINE_LIMIT", "WorkerSpec", "encode", "read_message"]

LINE_LIMIT = 64 * 1024


@dataclass(frozen=True)
class WorkerSpec:
    """Everything a worker needs, decided by the supervisor."""

    index: int  # 0 .. workers-1: names the worker in logs and its admin socket
    config: Config
    listen_fds: tuple[int, ...]  # the public listening sockets, shared by every worker
    control_fd: int  # this worker's end of its socketpair with the supervisor
    admin_socket: str  # the private admin listener's unix socket (in the supervisor's 0700 directory)
    uvloop: bool = False  # the supervisor runs on uvloop (RAP_UVLOOP=1): so does the worker
    token_key_file: Path | None = None  # the instance's random token key, when auth.token.secret_file is unset


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


async def read_message(reader: asyncio.StreamReader) -> dict[str, Any] | None:
    """The next message, or None at end of file; ValueError for a line that is too long or not an object.

    After a ValueError the stream is still usable: asyncio drops the
    offending line (or what it had of it) and the next read starts afresh.
    """
    line = await reader.readline()  # ValueError when longer than the reader's limit
    if not line:
        return None
    message = json.loads(line)  # json.JSONDecodeError is a ValueError
    if not isinstance(message, dict):
        raise ValueError("not a JSON object")
    return message
