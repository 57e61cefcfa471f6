"""Medians and formatting shared by the report and the targets evaluation."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

from bench.runner import Results, Runs


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float
    n: int


def spread(runs: Runs | None, key: str) -> Spread | None:
    if runs is None:
        return None
    values = [m[key] for m in runs.metrics if key in m]
    if not values:
        return None
    return Spread(statistics.median(values), min(values), max(values), len(values))


def med(results: Results, row: str, target: str, key: str) -> float | None:
    s = spread(results.get((row, target)), key)
    return s.median if s else None


def num(value: float | None, digits: int = 0) -> str:
    if value is None:
        return "–"
    if digits == 0 and abs(value) < 10:
        digits = 2 if abs(value) < 1 else 1
    return f"{value:,.{digits}f}"


def with_range(s: Spread | None, digits: int = 0) -> str:
    if s is None:
        return "–"
    if s.n == 1:
        return num(s.median, digits)
    return f"{num(s.median, digits)} ({num(s.low, digits)}–{num(s.high, digits)})"


def ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "–"
    value = a / b
    return f"{value:.3f}" if value < 0.1 else f"{value:.2f}"


def status_text(runs: Runs) -> str:
    """Status codes summed over all runs, e.g. '404×12345'."""
    totals: dict[str, float] = {}
    errors = 0.0
    for m in runs.metrics:
        for key, value in m.items():
            if key.startswith("status_"):
                totals[key[7:]] = totals.get(key[7:], 0.0) + value
        errors += m.get("errors", 0.0)
    parts = [f"{code}×{int(n)}" for code, n in sorted(totals.items()) if n]
    if errors:
        parts.append(f"conn errors×{int(errors)}")
    probes = sorted({int(m["probe_status"]) for m in runs.metrics if "probe_status" in m})
    if probes:
        parts.append("(one curl first: " + "/".join(map(str, probes)) + ")")
    return " ".join(parts) or "–"
