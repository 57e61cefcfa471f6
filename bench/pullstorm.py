"""Workload 7 client: N simultaneous anonymous blob pulls with aiohttp, digests checked.

One connection per pull (no pooling limit), so the server really holds N transfers
at once; each body is hashed as it streams, nothing is buffered whole.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

_CHUNK = 256 * 1024


@dataclass(frozen=True)
class StormResult:
    completed: int
    digests_ok: int
    bytes: int
    wall_s: float
    first_error: str | None


async def _one(session: aiohttp.ClientSession, url: str, want: str) -> tuple[bool, int, str]:
    digest = hashlib.sha256()
    size = 0
    async with session.get(url) as resp:
        if resp.status != 200:
            return False, 0, f"HTTP {resp.status}"
        async for chunk in resp.content.iter_chunked(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    ok = "sha256:" + digest.hexdigest() == want
    return ok, size, "" if ok else "digest mismatch"


async def _storm(url: str, n: int, want: str, ca: Path, timeout: float) -> StormResult:
    ctx = ssl.create_default_context(cafile=str(ca)) if url.startswith("https:") else None
    connector = aiohttp.TCPConnector(limit=0, ssl=ctx if ctx else False, force_close=True)
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=client_timeout) as session:
        start = time.perf_counter()
        results = await asyncio.gather(*(_one(session, url, want) for _ in range(n)), return_exceptions=True)
        wall = time.perf_counter() - start
    completed = ok = total = 0
    first_error: str | None = None
    for item in results:
        if isinstance(item, BaseException):
            first_error = first_error or f"{type(item).__name__}: {item}"
            continue
        good, size, err = item
        if err.startswith("HTTP"):
            first_error = first_error or err
            continue
        completed += 1
        total += size
        if good:
            ok += 1
        else:
            first_error = first_error or err
    return StormResult(completed, ok, total, wall, first_error)


def run(url: str, n: int, want: str, ca: Path, timeout: float = 600) -> StormResult:
    return asyncio.run(_storm(url, n, want, ca, timeout))
