"""Run-size settings: the full bench and the --quick development variant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024
ALL_TARGETS: tuple[str, ...] = ("direct", "proxy", "proxy-w2", "apache", "nginx")  # proxy-w2: `workers: 2`
BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent


@dataclass(frozen=True)
class Settings:
    """Everything that differs between a full and a --quick run, plus the CLI choices."""

    quick: bool
    targets: tuple[str, ...]
    out: Path
    proxy_args: tuple[str, ...]
    rounds: int
    big_blob_mib: int
    huge_blob_mib: int | None  # None: the 2 GiB row is skipped
    load_seconds: int
    connections: int
    concurrent_pulls: int
    small_blob_mib: int

    @property
    def load_duration(self) -> str:
        return f"{self.load_seconds}s"


def make_settings(
    quick: bool,
    targets: tuple[str, ...],
    out: Path | None,
    proxy_args: tuple[str, ...],
    rounds: int | None,
) -> Settings:
    """Quick mode keeps every workload but shrinks sizes and durations (< ~3 min)."""
    default_out = BENCH_DIR / ("RESULTS-quick.md" if quick else "RESULTS.md")
    return Settings(
        quick=quick,
        targets=targets,
        out=out if out is not None else default_out,
        proxy_args=proxy_args,
        rounds=rounds if rounds is not None else (1 if quick else 3),
        big_blob_mib=64 if quick else 512,
        huge_blob_mib=None if quick else 2048,
        load_seconds=3 if quick else 10,
        connections=32,
        concurrent_pulls=50 if quick else 200,
        small_blob_mib=16,
    )
