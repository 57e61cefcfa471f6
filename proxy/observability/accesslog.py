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

Cheap per request, because it runs for every one (issue 15): lines are
rendered straight from the request, without an intermediate dict, and
written in batches, one ``write(2)`` per event-loop turn (:class:`AccessSink`).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import sys
import time as _time
import weakref
from collections.abc import Iterator
from functools import lru_cache, partial
from io import FileIO
from json.encoder import encode_basestring_ascii as _json_str
from pathlib import Path
from select import PIPE_BUF
from typing import TextIO

from aiohttp import HttpVersion, HttpVersion10, HttpVersion11
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from proxy.http.keys import CLIENT, ROUTE, USER
from proxy.observability.bodybytes import body_bytes
from proxy.observability.metrics import Metrics

__all__ = ["AccessSink", "access_log", "make_access_logger"]

log = logging.getLogger(__name__)
access_log = logging.getLogger(__name__ + ".lines")  # handed to aiohttp only to switch its hook on


class AccessSink:
    """Where lines go: stdout, or ``log.file`` (append; reopened on SIGHUP for logrotate).

    Lines are batched, because one ``write(2)`` per request was a good part of
    the hook's cost: :meth:`write` queues the line, and the queue is written
    in one go at the end of the event-loop turn (a callback scheduled when it
    stops being empty), or at once when it holds ``FLUSH_AT`` characters.
    Order is kept (one queue, written whole, in order) and nothing is lost on
    the way out: :meth:`reopen` (SIGHUP, logrotate) and :meth:`close` flush
    first, and an ``atexit`` hook flushes a sink nobody closed. A crash
    (SIGKILL, a segfault) loses at most the lines of the loop turn it
    interrupted. Outside a running loop each line is written at once.

    Workers share the output. A file is opened ``O_APPEND`` and a batch is
    one write, which Linux does not interleave with other appenders. stdout
    is usually a pipe, where only writes of up to ``PIPE_BUF`` bytes are
    atomic, so a batch goes out in pieces of whole lines that fit (a longer
    line alone, as before batching): lines of two workers never mix.
    """

    FLUSH_AT = 64 * 1024

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: FileIO | None = None
        self._stdout: TextIO = sys.stdout
        self._open()
        self._lines: list[str] = []
        self._size = 0
        # a weak reference: a sink that is dropped unclosed is not kept alive until exit
        self._at_exit = partial(_flush_if_alive, weakref.ref(self))
        atexit.register(self._at_exit)

    def _open(self) -> None:
        if self.path is None:
            self._stdout = sys.stdout
        else:
            self._file = FileIO(self.path, "a")  # unbuffered: a batch is exactly one write

    def write(self, line: str) -> None:
        """Queue one line (without its newline) for the end of this loop turn."""
        lines = self._lines
        lines.append(line)
        self._size += len(line)
        if len(lines) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:  # no loop: nothing would come back to flush
                self.flush()
                return
        if self._size >= self.FLUSH_AT:
            self.flush()

    def flush(self) -> None:
        """Write the queued lines; errors are logged, never raised (a full disk must not fail requests)."""
        if not self._lines:
            return
        lines, self._lines, self._size = self._lines, [], 0
        text = lines[0] + "\n" if len(lines) == 1 else "\n".join(lines) + "\n"
        try:
            if self._file is not None:
                _write_all(self._file, text.encode("utf-8", "backslashreplace"))
            else:
                fits = len(lines) == 1 or (len(text) <= PIPE_BUF and text.isascii())
                for piece in [text] if fits else _pieces(lines, PIPE_BUF):
                    self._stdout.write(piece)
                    self._stdout.flush()
        except (OSError, ValueError) as exc:  # disk full, closed
            log.error("access log %s: %s (up to %d lines lost)", self.path or "stdout", exc, len(lines))

    def reopen(self) -> None:
        """Flush to the old file, then open ``path`` anew (logrotate has moved the old one away)."""
        self.flush()
        if self.path is None:
            return
        old = self._file
        self._open()
        if old is not None:
            old.close()

    def close(self) -> None:
        """Flush, then close the file (``serve`` calls this last, after the runner's drain logged all)."""
        self.flush()
        atexit.unregister(self._at_exit)
        if self._file is not None:
            self._file.close()


def _flush_if_alive(ref: weakref.ref[AccessSink]) -> None:
    sink = ref()
    if sink is not None:
        sink.flush()


def _write_all(file: FileIO, data: bytes) -> None:
    """One write, unless the kernel takes less (a filling disk): then the rest, until done or an error."""
    written = file.write(data)
    if written == len(data):
        return  # all of it, as ever but on a filling disk
    view = memoryview(data)
    while True:
        if not written:
            raise OSError(f"write returned {written!r}")
        view = view[written:]
        if not view:
            return
        written = file.write(view)


def _pieces(lines: list[str], limit: int) -> Iterator[str]:
    """The lines, newline-terminated, in order, joined into pieces of at most ``limit`` UTF-8 bytes.

    A line longer than ``limit`` is a piece of its own.
    """
    piece: list[str] = []
    size = 0
    for line in lines:
        n = (len(line) if line.isascii() else len(line.encode("utf-8", "surrogatepass"))) + 1  # isascii: O(1)
        if piece and size + n > limit:
            yield "\n".join(piece) + "\n"
            piece, size = [], 0
        piece.append(line)
        size += n
    yield "\n".join(piece) + "\n"


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


_PROTOCOLS = {HttpVersion10: "HTTP/1.0", HttpVersion11: "HTTP/1.1"}  # a constant: no formatting per request


def _protocol(version: HttpVersion) -> str:
    return _PROTOCOLS.get(version) or f"HTTP/{version.major}.{version.minor}"


@lru_cache(maxsize=4)
def _local_stamp(second: int) -> str:
    """Apache's ``%t`` for one second: formatted once per second, not once per request (issue 15)."""
    return _time.strftime("%d/%b/%Y:%H:%M:%S %z", _time.localtime(second))


def combined(request: BaseRequest, response: StreamResponse, seconds: float, user: str | None, now: float) -> str:
    """``%h - %u [%t] "%r" %>s %b "%{Referer}i" "%{User-Agent}i" %Dms`` (duration in ms last).

    Rendered straight from the request (no dict of fields first), ``user`` as the hook read it.
    """
    request_line = _clean(f"{request.method} {logged_path(request)} {_protocol(request.version)}")
    headers = request.headers
    referer = headers.get("Referer")
    agent = headers.get("User-Agent")
    return (
        f"{request.get(CLIENT) or request.remote or '-'} - {_clean(user) if user else '-'} "
        f"[{_local_stamp(int(now))}] \"{request_line}\" {response.status} {body_bytes(request, response) or '-'} "
        f"\"{_clean(referer) if referer else '-'}\" \"{_clean(agent) if agent else '-'}\" "
        f"{round(seconds * 1000, 1)}ms"
    )


@lru_cache(maxsize=4)
def _utc_stamp(second: int) -> str:
    return _time.strftime("%Y-%m-%dT%H:%M:%S", _time.gmtime(second))


def rfc3339(now: float) -> str:
    """``2026-12-02T15:04:05.123Z``: UTC with milliseconds, what log pipelines parse without a format hint."""
    second, millis = divmod(int(now * 1000), 1000)
    return f"{_utc_stamp(second)}.{millis:03d}Z"


def _json_opt(text: str | None) -> str:
    return "null" if text is None else _json_str(text)


def json_line(request: BaseRequest, response: StreamResponse, seconds: float, user: str | None, now: float) -> str:
    """One JSON object, byte for byte what ``json.dumps(..., separators=(",", ":"))`` wrote, ~5x cheaper.

    ``bytes_out`` is 0 when there was no body (the combined format writes ``-``).
    """
    sent = body_bytes(request, response)
    duration = round(seconds * 1000, 1)
    headers = request.headers
    return (
        f'{{"time":"{rfc3339(now)}","remote":{_json_str(request.get(CLIENT) or request.remote or "-")},'
        f'"user":{_json_opt(user or None)},"method":{_json_str(request.method)},'
        f'"path":{_json_str(logged_path(request))},"protocol":"{_protocol(request.version)}",'
        f'"status":{int(response.status)},"bytes_out":{"null" if sent is None else int(sent)},'
        f'"bytes_in":{int(request.content.total_bytes)},"referer":{_json_opt(headers.get("Referer"))},'
        f'"user_agent":{_json_opt(headers.get("User-Agent"))},'
        f'"duration_ms":{repr(duration) if duration - duration == 0 else _json_float(duration)}}}'
    )


def _json_float(value: float) -> str:
    """What ``json.dumps`` writes for inf and nan (never for a real duration)."""
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


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
            user = request.get(USER)  # once: a missing key costs an exception in Mapping.get
            metrics.observe(request, response, time, user)
            if sink is not None:
                sink.write(render(request, response, time, user, _time.time()))

    return _AccessLogger
