"""What a manifest HEAD costs a Python proxy that does nothing else: the floor under issue 15's HEAD goal.

    python -m bench.floors [--rounds 3]   # ~2 min; CPU ms per request of each floor and of the proxy

Three throwaway servers, each over TLS on aiohttp's server, beside direct
and the real proxy, rounds interleaved, each measured with the same
``hey -m HEAD -c 32`` as ``bench.head_ab`` and CPU from /proc:

- ``hello``: answers the HEAD itself, no backend, paced to ~1,300 req/s
  (what the proxy serves in that row), because per-request cost grows when
  each loop turn carries fewer requests;
- ``aiohttp-client``: forwards to the registry with aiohttp's client and
  copies the headers back: no routing, policy, log or metrics;
- ``raw-client``: the same with a bare asyncio protocol as the client.

HEAD throughput through a front is about 1 / (1 + its CPU per request /
the registry's) of direct on a 2-core box where all share the cores, so
0.85x direct needs ~0.18 ms where the registry costs ~1.0 ms. When even
``raw-client`` costs more than that, no policy code can get the real
proxy there: only a server outside CPython could.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import head_ab, targets
from bench.fixtures import REPO, make_blob, make_workspace
from bench.loadgen import LoadResult, parse_hey
from bench.procs import ProcessGroups
from bench.procstat import CpuMeter, settle
from bench.workloads import MANIFEST_TYPE, TAG, seed_registry

SECONDS = 5
FLOORS = ("hello", "aiohttp-client", "raw-client")


def serve(kind: str, port: int, backend: str, cert: str, key: str) -> None:
    """Run one floor server for ever (in a child process)."""
    from aiohttp import ClientSession, TCPConnector, web
    from multidict import CIMultiDict

    host, _, bport = backend.removeprefix("http://").partition(":")

    class Conn(asyncio.Protocol):
        def __init__(self) -> None:
            self.buf = b""
            self.fut: asyncio.Future[bytes] | None = None

        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            self.transport = transport
            self.open = True

        def connection_lost(self, exc: Exception | None) -> None:
            self.open = False
            if self.fut is not None and not self.fut.done():
                self.fut.set_exception(ConnectionError("the backend closed"))

        def data_received(self, data: bytes) -> None:
            self.buf += data
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0 and self.fut is not None and not self.fut.done():
                head, self.buf = self.buf[:end], self.buf[end + 4:]
                self.fut.set_result(head)

    idle: collections.deque[Conn] = collections.deque()

    async def raw(request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        while idle and not idle[-1].open:
            idle.pop()
        conn = idle.pop() if idle else (await loop.create_connection(Conn, host, int(bport)))[1]
        conn.fut = loop.create_future()
        conn.transport.write(f"HEAD {request.raw_path} HTTP/1.1\r\nHost: {host}:{bport}\r\n"  # type: ignore[attr-defined]
                             f"Accept: {request.headers.get('Accept', '')}\r\n\r\n".encode())
        lines = (await conn.fut).decode("latin-1").split("\r\n")
        if conn.open and "connection: close" not in (line.lower() for line in lines):
            idle.append(conn)
        headers = CIMultiDict(line.split(": ", 1) for line in lines[1:])
        response = web.StreamResponse(status=int(lines[0][9:12]), headers=headers)
        await response.prepare(request)
        return response

    async def via_aiohttp(request: web.Request) -> web.StreamResponse:
        session = request.app["session"]
        async with session.request(request.method, backend + request.raw_path,
                                   headers={"Accept": request.headers.get("Accept", "")}) as answer:
            response = web.StreamResponse(status=answer.status, headers=CIMultiDict(answer.headers))
            await response.prepare(request)
            return response

    async def hello(request: web.Request) -> web.StreamResponse:
        return web.Response(headers={"Content-Type": MANIFEST_TYPE, "Docker-Content-Digest": "sha256:" + "a" * 64,
                                     "Content-Length": "528"})

    async def main() -> None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        app = web.Application()
        if kind == "aiohttp-client":
            app["session"] = ClientSession(connector=TCPConnector(limit=100), auto_decompress=False)
        handlers = {"hello": hello, "raw-client": raw, "aiohttp-client": via_aiohttp}
        app.router.add_route("*", "/{tail:.*}", handlers[kind])
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
        await asyncio.Event().wait()

    asyncio.run(main())


def _wait_listening(port: int, poll: Callable[[], int | None]) -> None:
    """Until the floor server accepts a connection (its start-up CPU is not measured)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if poll() is not None:
            raise SystemExit(f"the floor server on port {port} exited")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the floor server on port {port} did not listen within 30 s")


def _hey(url: str, pace: list[str]) -> LoadResult:
    cmd = ["hey", "-m", "HEAD", "-c", "32", *pace, "-z", f"{SECONDS}s", "-H", f"Accept: {MANIFEST_TYPE}", url]
    return parse_hey(subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=SECONDS + 120).stdout)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 6 and argv[0] == "--serve":
        serve(argv[1], int(argv[2]), argv[3], argv[4], argv[5])
        return 0
    rounds = int(argv[argv.index("--rounds") + 1]) if "--rounds" in argv else 3
    root = Path(tempfile.mkdtemp(prefix="floors-"))
    pg = ProcessGroups()
    tree = str(Path(__file__).resolve().parents[1])
    try:
        ws = make_workspace(root)
        direct = targets.start_registry(ws, pg)
        seed_registry(ws, direct, [make_blob(root / "small.bin", 1)])
        fronts: dict[str, tuple[str, int]] = {"direct": (direct.url, direct.pid)}
        for kind in FLOORS:
            port = targets.free_port()
            proc = pg.start([sys.executable, "-m", "bench.floors", "--serve", kind, str(port), direct.url,
                             str(ws.server_cert), str(ws.server_key)], root / f"{kind}.log",
                            env=dict(os.environ, PYTHONPATH=tree))
            _wait_listening(port, proc.poll)
            fronts[kind] = (f"https://127.0.0.1:{port}", proc.pid)
        fronts["proxy"] = head_ab.start_proxy(ws, pg, direct.url, "proxy", tree, sys.executable, root)
        runs: dict[str, list[head_ab.Run]] = {name: [] for name in fronts}
        for _ in range(rounds):
            for name, (url, pid) in fronts.items():
                settle([pid, direct.pid])
                meter = CpuMeter({"server": pid})
                # hello has no backend to hold it back: paced to what the proxy serves (40/s x 32 connections),
                # since a request costs more when each loop turn carries fewer of them
                result = _hey(f"{url}/v2/{REPO}/manifests/{TAG}", ["-q", "40"] if name == "hello" else [])
                cpu = meter.stop().seconds["server"]
                ms = 0.0 if name == "direct" else cpu * 1000 / max(result.requests, 1)
                runs[name].append((result.rps, ms, result.status_text()))
        print(f"manifest HEAD by tag, hey -c 32, {rounds} rounds of {SECONDS} s, medians (CPU of the front only):")
        print("\n".join(head_ab.medians(runs)), flush=True)
    finally:
        pg.stop_all()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
