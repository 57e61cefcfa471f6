"""A recording TCP pass-through placed between the proxy and the backend.

Tests must PROVE what reached the registry (no Authorization header, never
an OPTIONS request, the exact Host header...). The tap relays bytes
unchanged and at once: every chunk is forwarded the moment it arrives and
only then fed to a small HTTP/1.1 request parser (head, Content-Length,
chunked framing) that cuts out each request head. Bodies are never held in
memory, and bytes that are not HTTP (e.g. a TLS ClientHello from a client
probing https first) are relayed without delay instead of waiting for a
head that never comes.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass

from tests.support.ports import free_port

_CHUNK = 256 * 1024
_HEAD_LIMIT = 256 * 1024
_TOKEN_CHARS = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-_")


@dataclass(frozen=True)
class RequestHead:
    """A parsed request head, for convenient assertions."""

    method: str
    target: str
    headers: tuple[tuple[str, str], ...]

    def header_values(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self.headers if key.lower() == lname]

    def has_header(self, name: str) -> bool:
        return bool(self.header_values(name))


def parse_head(raw: bytes) -> RequestHead:
    """Split a raw request head into method, target and header pairs."""
    lines = raw.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if not line:
            continue
        key, _, value = line.partition(":")
        headers.append((key.strip(), value.strip()))
    return RequestHead(method=method, target=target, headers=tuple(headers))


class RequestStreamParser:
    """Incremental parser over the client->server byte stream (already forwarded).

    States: ``head`` (collect up to CRLFCRLF), ``fixed`` (skip N body bytes),
    ``size`` (chunk-size line), ``data`` (chunk bytes + CRLF), ``trailer``
    (lines until an empty one), ``raw`` (not HTTP: stop parsing for good).
    """

    def __init__(self, on_head: Callable[[bytes], None]) -> None:
        self._on_head = on_head
        self._state = "head"
        self._buf = bytearray()
        self._left = 0

    @property
    def raw(self) -> bool:
        return self._state == "raw"

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view and self._state != "raw":
            view = self._step(view)

    def _step(self, view: memoryview) -> memoryview:
        if self._state in ("fixed", "data"):
            take = min(self._left, len(view))
            self._left -= take
            if self._left == 0:
                self._state = "head" if self._state == "fixed" else "size"
            return view[take:]
        if self._state == "head" and not self._buf and view[0] in b"\r\n":
            return view[1:]  # stray CRLF between requests (RFC 9112 2.2)
        marker = b"\r\n\r\n" if self._state == "head" else b"\r\n"
        start = max(0, len(self._buf) - len(marker) + 1)
        self._buf += view
        if self._state == "head" and self._buf and self._buf[0] not in _TOKEN_CHARS:
            self._state = "raw"  # e.g. TLS bytes: not a request line
            return view[:0]
        end = self._buf.find(marker, start)
        if end < 0:
            if len(self._buf) > _HEAD_LIMIT:
                self._state = "raw"
            return view[:0]
        end += len(marker)
        consumed_from_view = end - (len(self._buf) - len(view))
        item = bytes(self._buf[:end])
        self._buf.clear()
        self._finish(item)
        return view[consumed_from_view:]

    def _finish(self, item: bytes) -> None:
        if self._state == "head":
            self._on_head(item)
            try:
                head = parse_head(item)
                chunked = "chunked" in ",".join(head.header_values("Transfer-Encoding")).lower()
                lengths = head.header_values("Content-Length")
                length = int(lengths[0]) if lengths and not chunked else 0
            except ValueError:
                self._state = "raw"
                return
            if chunked:
                self._state = "size"
            elif length > 0:
                self._state, self._left = "fixed", length
        elif self._state == "size":
            try:
                size = int(item.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self._state = "raw"
                return
            self._state, self._left = ("trailer", 0) if size == 0 else ("data", size + 2)
        elif self._state == "trailer" and item == b"\r\n":
            self._state = "head"


class Tap:
    """Listen on a free loopback port and relay every connection to ``target_port``."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1") -> None:
        self.target_host = target_host
        self.target_port = target_port
        self.port = free_port()
        self._heads: list[bytes] = []
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Tap:
        """Start the relay thread; returns self for chaining."""
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", self.port))
            except BaseException as exc:
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name=f"tap-{self.port}", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]
        return self

    def stop(self) -> None:
        """Close the listener and every relayed connection."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._loop = self._thread = None

    def request_heads(self) -> list[bytes]:
        """Raw bytes of every request head relayed so far (up to and incl. CRLFCRLF)."""
        with self._lock:
            return list(self._heads)

    def requests(self) -> list[RequestHead]:
        """Parsed form of :meth:`request_heads`."""
        return [parse_head(raw) for raw in self.request_heads()]

    def clear(self) -> None:
        with self._lock:
            self._heads.clear()

    def _record(self, head: bytes) -> None:
        with self._lock:
            self._heads.append(head)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        try:
            try:
                backend_r, backend_w = await asyncio.open_connection(self.target_host, self.target_port)
            except OSError:
                return  # backend down: drop the client like a dead port would
            try:
                parser = RequestStreamParser(self._record)
                await asyncio.gather(
                    self._pump(client_r, backend_w, parser.feed),
                    self._pump(backend_r, client_w, None),
                )
            finally:
                backend_w.close()
        except (OSError, asyncio.IncompleteReadError):
            pass  # a peer went away: the other side just sees the close
        except asyncio.CancelledError:
            pass  # stop(): finish quietly instead of logging a cancelled task
        finally:
            client_w.close()
            self._tasks.discard(task)

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        observe: Callable[[bytes], None] | None,
    ) -> None:
        """Forward first, observe second: parsing can never delay a byte."""
        try:
            while data := await reader.read(_CHUNK):
                writer.write(data)
                if observe is not None:
                    observe(data)
                await writer.drain()
        finally:
            if writer.can_write_eof() and not writer.is_closing():
                with contextlib.suppress(OSError):
                    writer.write_eof()
