"""HTTP/1.1 on a backend connection: the request head we write, the response we read (pure, no I/O).

Why our own (issue 15): a manifest ``HEAD`` spent a fifth of the proxy's
CPU inside aiohttp's client (request and response objects, timers, trace
hooks, the connector) for a request that is one write and one read.
:mod:`proxy.http.backend.connection` drives these functions over a plain
asyncio protocol; uploads still go through aiohttp's client, which already
streams request bodies well.

Strict on purpose: the backend is a registry we know, so anything it would
not send (no status line, folded or nameless headers, a body framed two
ways, an unknown transfer coding) is a :class:`WireError`, the answer a 502,
and the connection is never reused. A connection is reused only when its
answer was framed unambiguously and read to its last byte; that is what
keeps one client's answer from leaking into the next request on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from multidict import CIMultiDict

__all__ = ["MAX_HEAD", "Chunked", "Head", "WireError", "parse_head", "request_head"]

MAX_HEAD = 64 * 1024  # a response head larger than this is refused (aiohttp's client allows 8 KiB per line)
MAX_CHUNK_LINE = 4096  # a chunk-size line with extensions; Go writes 1-8 hex digits
_NAME = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_SECTION = re.compile(rf"(?:{_NAME}:[^\r\n\0]*\r\n)*")  # every line a field; no folding, no bare CR, LF or NUL
_FIELD = re.compile(rf"({_NAME}):([^\r\n]*)\r\n")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")
_NO_BODY = frozenset({204, 304})


class WireError(Exception):
    """The backend's bytes are not an HTTP/1.1 answer that can be framed safely."""


@dataclass(frozen=True, slots=True)
class Head:
    """A response head, and how its body is framed."""

    status: int
    reason: str
    headers: CIMultiDict[str]
    content_length: int | None  # the header's value (also on a HEAD answer, which has no body)
    body: int | None  # bytes of body to read: 0 none, N exactly N, None chunked or until close
    chunked: bool
    keep_alive: bool  # the connection may carry another request once the body is read


def request_head(method: str, target: str, headers: Iterable[tuple[str, str]]) -> bytes:
    """``METHOD target HTTP/1.1`` and the headers, as bytes; a CR, LF or NUL anywhere is refused.

    The values come from a request aiohttp's parser accepted, which refuses
    them already; checked again because this is where a header could be
    split into two.
    """
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers:
        lines.append(f"{name}: {value}")
    text = "\r\n".join(lines)
    breaks = len(lines) - 1  # the only CRs and LFs allowed are the ones joining the lines
    if text.count("\n") != breaks or text.count("\r") != breaks or "\0" in text:
        raise ValueError("a header or the target holds a line break or NUL")
    return (text + "\r\n\r\n").encode("utf-8", "surrogateescape")


def parse_head(block: bytes, method: str) -> Head:
    """One response head (up to, not including, the blank line) for a request with ``method``.

    Two passes in C over the whole header section (one regex judges it,
    one splits it) instead of Python work per line: this runs once per
    pull and was the client's largest cost.
    """
    text = block.decode("utf-8", "surrogateescape")
    status_line, _, section = text.partition("\r\n")
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if version not in ("HTTP/1.1", "HTTP/1.0") or len(code) != 3 or not code.isdigit() or not code.isascii():
        raise WireError("no HTTP/1.x status line")
    if "\r" in reason or "\n" in reason or "\0" in reason:
        raise WireError("a line break or NUL in the status line")
    status = int(code)
    if status < 100:
        raise WireError(f"status {status}")
    if section:
        section += "\r\n"
        if not _SECTION.fullmatch(section):
            raise WireError("a header line without a valid name (or a folded line)")
    headers: CIMultiDict[str] = CIMultiDict([(name, value.strip(" \t")) for name, value in _FIELD.findall(section)])
    length = _content_length(headers) if "Content-Length" in headers else None
    codings = ([c.strip().lower() for v in headers.getall("Transfer-Encoding") for c in v.split(",")]
               if "Transfer-Encoding" in headers else [])
    if codings and codings != ["chunked"]:
        raise WireError(f"transfer coding {','.join(codings)!r}")
    chunked = bool(codings)
    if chunked and length is not None:
        raise WireError("both Content-Length and Transfer-Encoding")
    keep_alive = version == "HTTP/1.1" and ("Connection" not in headers or "close" not in {
        t.strip().lower() for v in headers.getall("Connection") for t in v.split(",")})
    if method == "HEAD" or status in _NO_BODY or status < 200:
        body: int | None = 0
    elif chunked:
        body = None
    elif length is not None:
        body = length
    else:
        body, keep_alive = None, False  # read until the backend closes
    return Head(status, reason, headers, length, body, chunked, keep_alive)


def _content_length(headers: CIMultiDict[str]) -> int | None:
    values = {v.strip() for line in headers.getall("Content-Length", ()) for v in line.split(",")}
    if not values:
        return None
    if len(values) != 1 or not next(iter(values)).isdigit() or not next(iter(values)).isascii():
        raise WireError("a Content-Length that is not one number")
    return int(next(iter(values)))


class Chunked:
    """Decodes ``Transfer-Encoding: chunked`` incrementally: feed bytes, get payload pieces.

    Trailers are read and dropped (a registry sends none). :attr:`done` is
    set after the last chunk's trailer; bytes after it are :attr:`extra`
    (the caller must not reuse a connection that has any).
    """

    def __init__(self) -> None:
        self._buf = b""
        self._left = -1  # bytes of the current chunk still to come; -1: a size line is next
        self._crlf = False  # a chunk's data ended: its CRLF is next
        self._trailer = False
        self.done = False
        self.extra = b""

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        buf = self._buf + data if self._buf else data
        self._buf = b""
        pos = 0
        while pos < len(buf) and not self.done:
            if self._left > 0:
                take = buf[pos:pos + self._left]
                out.append(take)
                self._left -= len(take)
                pos += len(take)
                if self._left == 0:
                    self._crlf = True
                continue
            end = buf.find(b"\r\n", pos)
            if end < 0:
                if len(buf) - pos > MAX_CHUNK_LINE:
                    raise WireError("a chunk line too long")
                self._buf = buf[pos:]
                return out
            if end - pos > MAX_CHUNK_LINE:
                raise WireError("a chunk line too long")
            line, pos = buf[pos:end], end + 2
            if self._crlf:
                if line:
                    raise WireError("chunk data longer than its size")
                self._crlf, self._left = False, -1
            elif self._trailer:
                self.done = not line  # trailer lines until the blank one
            else:
                size = line.partition(b";")[0].strip(b" \t")
                if not _HEX.fullmatch(size):
                    raise WireError("a chunk size that is not hex")
                self._left = int(size, 16)
                if self._left == 0:
                    self._trailer, self._left = True, -1
        if self.done:
            self.extra = buf[pos:]
        return out
