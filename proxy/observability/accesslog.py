"""One access-log line per request, Apache combined format or JSON lines.

The address is the one the policy judged (the PROXY header's client, or a
trusted front proxy's ``X-Forwarded-For`` hop), falling back to the peer for
requests refused before the handler ran. The user is the name the gate
established, never what the client claimed, and no header but Referer and
User-Agent is logged, so passwords and tokens cannot appear here. The token
endpoint is logged by path only (its query has no secrets today; this keeps
it that way). The same hook feeds the metrics,
because it runs once per request after the last byte, when status and byte
counts are final.

Bytes are body bytes, as Apache's ``%b`` (``proxy.observability.bodybytes``):
``-`` in the combined format and ``0`` in JSON when there was no body (an
empty 201, any HEAD), because a number is what log pipelines sum. JSON
times are RFC 3339 in UTC with milliseconds, which every log pipeline
parses without a format hint; the combined format keeps Apache's local
``%t``.
"""

from __future__ import annotations

import json
import logging
import sys
import time as _time
from functools import lru_cache
from pathlib import Path
from typing import TextIO

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from proxy.http.keys import CLIENT, ROUTE, USER
from proxy.observability.bodybytes import body_bytes
from proxy.observability.metrics import Metrics

__all__ = ["AccessSink", "access_log", "make_access_logger"]

log = logging.getLogger(__name__)
access_log = logging.getLogger(__name__ + ".lines")  # handed to aiohttp only to switch its hook on


class AccessSink:
    """Where lines go: stdout, or ``log.file`` (append; reopened on SIGHUP for logrotate)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._fh: TextIO = self._open()

    def _open(self) -> TextIO:
        if self.path is None:
            return sys.stdout
        return self.path.open("a", encoding="utf-8", buffering=1)

    def write(self, line: str) -> None:
        try:
            self._fh.write(line + "\n")
            self._fh.flush()
        except (OSError, ValueError) as exc:  # disk full, closed: never fail the request for a log line
            log.error("access log %s: %s", self.path or "stdout", exc)

    def reopen(self) -> None:
        if self.path is None:
            return
        old, self._fh = self._fh, self._open()
        old.close()

    def close(self) -> None:
        if self.path is not None:
            self._fh.close()


def _clean(text: str) -> str:
    """Apache-style escaping: quotes, backslashes and control characters cannot forge fields."""
    if text.isprintable() and '"' not in text and "\\" not in text:
        return text  # the common case, without a per-character pass
    out = text.replace("\\", "\\\\").replace('"', '\\"')
    return "".join(c if c.isprintable() else f"\\x{ord(c):02x}" for c in out)


def logged_path(request: BaseRequest) -> str:
    route = request.get(ROUTE)
    if route is not None and route.is_token:
        return request.path  # the token endpoint: path only, never the query
    if request.path.startswith("/v2"):
        return request.raw_path
    return request.path  # 404s: path only


def _fields(request: BaseRequest, response: StreamResponse, seconds: float) -> dict[str, object]:
    version = request.version
    return {
        "remote": request.get(CLIENT) or request.remote or "-",  # the address the policy judged
        "user": request.get(USER) or None,
        "method": request.method,
        "path": logged_path(request),
        "protocol": f"HTTP/{version.major}.{version.minor}",
        "status": response.status,
        "bytes_out": body_bytes(request, response),  # body only, as Apache's %b: 0 for HEAD, 201, 204
        "bytes_in": request.content.total_bytes,
        "referer": request.headers.get("Referer"),
        "user_agent": request.headers.get("User-Agent"),
        "duration_ms": round(seconds * 1000, 1),
    }


@lru_cache(maxsize=4)
def _local_stamp(second: int) -> str:
    """Apache's ``%t`` for one second: formatted once per second, not once per request (issue 15)."""
    return _time.strftime("%d/%b/%Y:%H:%M:%S %z", _time.localtime(second))


def combined(f: dict[str, object], now: float) -> str:
    """``%h - %u [%t] "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %Dms`` (duration in ms last)."""
    stamp = _local_stamp(int(now))
    request_line = _clean(f"{f['method']} {f['path']} {f['protocol']}")
    return (
        f"{f['remote']} - {_clean(str(f['user'])) if f['user'] else '-'} [{stamp}] \"{request_line}\" "
        f"{f['status']} {f['bytes_out'] or '-'} \"{_clean(str(f['referer'] or '-'))}\" "
        f"\"{_clean(str(f['user_agent'] or '-'))}\" {f['duration_ms']}ms"
    )


def rfc3339(now: float) -> str:
    """``2026-12-02T15:04:05.123Z``: UTC with milliseconds, what log pipelines parse without a format hint."""
    millis = int(now * 1000)
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(millis // 1000)) + f".{millis % 1000:03d}Z"


def json_line(f: dict[str, object], now: float) -> str:
    """One JSON object; ``bytes_out`` is 0 when there was no body (the combined format writes ``-``)."""
    return json.dumps({"time": rfc3339(now), **f}, separators=(",", ":"))


def make_access_logger(sink: AccessSink | None, metrics: Metrics, fmt: str) -> type[AbstractAccessLogger]:
    """An aiohttp access-logger class bound to this app's sink and metrics.

    It is installed even with ``log.access: false`` (then ``sink`` is None)
    because it is also where metrics are recorded.
    """
    render = json_line if fmt == "json" else combined

    class _AccessLogger(AbstractAccessLogger):
        @property
        def enabled(self) -> bool:
            return True  # metrics depend on this hook: never let a logging level switch it off

        def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
            metrics.observe(request, response, time, request.get(USER))
            if sink is not None:
                sink.write(render(_fields(request, response, time), _time.time()))

    return _AccessLogger
