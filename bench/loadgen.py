"""hey and wrk runs, parsed.

hey is used for HEAD (wrk 4.1 waits for a body after HEAD and stalls) and for
DELETE with a header; wrk for GETs. Requests per second counts only requests that
got an HTTP answer (hey's own figure also counts connection errors).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

from bench.clients import ClientError


@dataclass(frozen=True)
class LoadResult:
    requests: int  # answered requests
    seconds: float
    p50_ms: float | None
    p99_ms: float | None
    statuses: dict[str, int]
    errors: int  # connection/timeouts/socket errors

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def status_text(self) -> str:
        parts = [f"{code}×{n}" for code, n in sorted(self.statuses.items())]
        if self.errors:
            parts.append(f"errors×{self.errors}")
        return " ".join(parts) or "none"


def run_hey(url: str, method: str, seconds: int, connections: int, headers: tuple[str, ...] = ()) -> LoadResult:
    cmd = ["hey", "-z", f"{seconds}s", "-c", str(connections), "-m", method]
    for header in headers:
        cmd += ["-H", header]
    cmd.append(url)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if proc.returncode != 0:
        raise ClientError(f"hey exit {proc.returncode}: {proc.stderr.strip()[:300]}")
    return parse_hey(proc.stdout)


def parse_hey(text: str) -> LoadResult:
    total = re.search(r"Total:\s+([\d.]+) secs", text)
    if total is None:
        raise ClientError(f"unparsable hey output: {text[:200]!r}")
    pct = {p: float(v) * 1000 for p, v in re.findall(r"(\d+)% in ([\d.]+) secs", text)}
    slowest = re.search(r"Slowest:\s+([\d.]+) secs", text)
    if "99" not in pct and slowest and float(slowest.group(1)) > 0:
        # hey prints "0% in 0.0000 secs" instead of the 99th percentile when it has fewer
        # than ~100 samples (e.g. bcrypt cost 12); the slowest request is then the p99.
        pct["99"] = float(slowest.group(1)) * 1000
    statuses = {code: int(n) for code, n in re.findall(r"\[(\d{3})\]\s+(\d+) responses", text)}
    err_block = text.split("Error distribution:", 1)
    errors = sum(int(n) for n in re.findall(r"\[(\d+)\]\s", err_block[1])) if len(err_block) > 1 else 0
    return LoadResult(
        requests=sum(statuses.values()),
        seconds=float(total.group(1)),
        p50_ms=pct.get("50"),
        p99_ms=pct.get("99"),
        statuses=statuses,
        errors=errors,
    )


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(value: str) -> float:
    num, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value).groups()  # type: ignore[union-attr]
    return float(num) * _UNIT_MS[unit]


def run_wrk(url: str, seconds: int, connections: int, headers: tuple[str, ...] = ()) -> LoadResult:
    cmd = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for header in headers:
        cmd += ["-H", header]
    cmd.append(url)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120)
    if proc.returncode != 0:
        raise ClientError(f"wrk exit {proc.returncode}: {proc.stderr.strip()[:300]}")
    return parse_wrk(proc.stdout)


def parse_wrk(text: str) -> LoadResult:
    total = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m),", text)
    if total is None:
        raise ClientError(f"unparsable wrk output: {text[:200]!r}")
    requests = int(total.group(1))
    seconds = _ms(total.group(2) + total.group(3)) / 1000
    pct = {p: _ms(v) for p, v in re.findall(r"^\s+(\d+)%\s+([\d.]+(?:us|ms|s|m))$", text, re.M)}
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    bad = int(non2xx.group(1)) if non2xx else 0
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = sum(int(x) for x in sock.groups()) if sock else 0
    statuses = {"2xx/3xx": requests - bad}
    if bad:
        statuses["non-2xx/3xx"] = bad
    return LoadResult(requests, seconds, pct.get("50"), pct.get("99"), statuses, errors)
