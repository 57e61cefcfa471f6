"""Process-tree CPU and memory from /proc.

Why /proc and not the tools' own numbers: the load generator shares the two cores
with the servers, so wall-clock throughput is noisy; CPU seconds charged to the
server's process tree (children included) is the stable cost measure the anchors use.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _read_stat(pid: int) -> tuple[int, float] | None:
    """Return (ppid, utime+stime+cutime+cstime seconds) or None if the process is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm may contain spaces or parentheses: split after the last ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    ppid = int(fields[1])
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ppid, ticks / _CLK_TCK


def _parents() -> dict[int, int]:
    result: dict[int, int] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            stat = _read_stat(int(name))
            if stat is not None:
                result[int(name)] = stat[0]
    return result


def tree_pids(root: int) -> list[int]:
    """The root and all its descendants that are alive right now."""
    parents = _parents()
    if root not in parents:
        return []
    children: dict[int, list[int]] = {}
    for pid, ppid in parents.items():
        children.setdefault(ppid, []).append(pid)
    found: list[int] = []
    stack = [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def tree_cpu_seconds(root: int) -> float:
    """User+system CPU of the whole tree, including reaped children (cutime/cstime).

    A child that exits between two snapshots moves its time into its parent's
    cutime, so deltas stay consistent.
    """
    total = 0.0
    for pid in tree_pids(root):
        stat = _read_stat(pid)
        if stat is not None:
            total += stat[1]
    return total


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_mib(root: int, pids: list[int] | None = None) -> float:
    """Sum of VmRSS over the tree (shared pages counted once per process, as the anchors do)."""
    return sum(_rss_kib(pid) for pid in (pids if pids is not None else tree_pids(root))) / 1024.0


@dataclass(frozen=True)
class CpuWindow:
    """CPU seconds a set of process trees used during one measured interval."""

    seconds: dict[str, float]


class CpuMeter:
    """Snapshot CPU of several named trees before and after a run."""

    def __init__(self, roots: dict[str, int]) -> None:
        self._roots = roots
        self._start = {name: tree_cpu_seconds(pid) for name, pid in roots.items()}

    def stop(self) -> CpuWindow:
        return CpuWindow({name: tree_cpu_seconds(pid) - self._start[name] for name, pid in self._roots.items()})


class RssSampler:
    """Background thread sampling a tree's summed VmRSS every `interval` seconds."""

    def __init__(self, root: int, interval: float = 0.05) -> None:
        self._root = root
        self._interval = interval
        self._stop = threading.Event()
        self.peak_mib = tree_rss_mib(root)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        # Re-walking /proc costs a few ms; do it every 10th sample only (Apache may fork).
        pids = tree_pids(self._root)
        tick = 0
        while not self._stop.wait(self._interval):
            tick += 1
            if tick % 10 == 0:
                pids = tree_pids(self._root)
            self.peak_mib = max(self.peak_mib, tree_rss_mib(self._root, pids))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mib = max(self.peak_mib, tree_rss_mib(self._root))


def settle(roots: list[int], max_wait: float = 10.0, busy_fraction: float = 0.05) -> None:
    """Wait until the trees are (nearly) idle, so one run's tail does not leak into the next.

    Example: nginx still running queued bcrypt cost-12 checks after hey has stopped.
    """
    deadline = time.monotonic() + max_wait
    while time.monotonic() < deadline:
        before = sum(tree_cpu_seconds(r) for r in roots)
        time.sleep(0.25)
        used = sum(tree_cpu_seconds(r) for r in roots) - before
        if used <= 0.25 * busy_fraction:
            return
