"""The issue's performance targets for our proxy, each evaluated as met / missed / n/a."""

from __future__ import annotations

from dataclasses import dataclass

from bench.runner import NOT_STARTED, Results
from bench.stats import med, spread


@dataclass(frozen=True)
class Goal:
    text: str
    measured: str
    verdict: str  # "met" | "missed" | "n/a"


def _check(
    text: str,
    value: float | None,
    limit: float | None,
    higher_is_better: bool,
    fmt: str = "{:.2f}",
    strict: bool = False,
) -> Goal:
    if value is None or limit is None:
        return Goal(text, "–", "n/a")
    if higher_is_better:
        ok = value > limit if strict else value >= limit
    else:
        ok = value < limit if strict else value <= limit
    return Goal(text, fmt.format(value), "met" if ok else "missed")


def _ratio(results: Results, row: str, key: str, other: str) -> float | None:
    mine = med(results, row, "proxy", key)
    theirs = med(results, row, other, key)
    return mine / theirs if mine is not None and theirs else None


def evaluate(results: Results, n_pulls: int, quick: bool) -> list[Goal]:
    goals: list[Goal] = []
    ratio_fmt = "{:.3f}×"
    goals.append(_check("1 pull ≥ 1.1× nginx", _ratio(results, "pull", "mbps", "nginx"), 1.1, True, ratio_fmt))
    goals.append(_check("1 pull ≥ 1.3× Apache", _ratio(results, "pull", "mbps", "apache"), 1.3, True, ratio_fmt))
    goals.append(
        _check("1 pull CPU ≤ 1.5 s/GB", med(results, "pull", "proxy", "cpu_s_per_gb"), 1.5, False, "{:.2f} s/GB")
    )
    goals.append(_check("2 push ≥ nginx", _ratio(results, "push", "mbps", "nginx"), 1.0, True, ratio_fmt))
    goals.append(_check("3 HEAD ≥ 0.85× direct", _ratio(results, "head", "rps", "direct"), 0.85, True, ratio_fmt))
    goals.append(
        _check(
            "3 HEAD proxy CPU ≤ 0.5 ms/req", med(results, "head", "proxy", "cpu_ms_per_req"), 0.5, False, "{:.3f} ms"
        )
    )
    goals.append(
        _check(
            "4 Basic writes cost 12 ≥ 0.5× direct req/s",
            _ratio(results, "basic:mark12", "rps", "direct"),
            0.5,
            True,
            ratio_fmt,
        )
    )
    goals.append(
        _check(
            "4 Basic writes cost 12 p99 < 200 ms",
            med(results, "basic:mark12", "proxy", "p99_ms"),
            200,
            False,
            "{:.1f} ms",
            strict=True,
        )
    )
    for row, label in (("pull", "pull"), ("push", "push"), ("huge_pull", "2 GiB pull"), ("huge_push", "2 GiB push")):
        text = f"6 peak RSS ≤ 64 MiB, {label}"
        runs = results.get((row, "proxy"))
        if row.startswith("huge") and (quick or (runs is not None and runs.na)):
            goals.append(Goal(text, "skipped in --quick" if quick else str(runs and runs.na), "n/a"))
            continue
        s = spread(runs, "peak_rss_mib")
        goals.append(_check(text, s.high if s else None, 64, False, "{:.1f} MiB"))
    for row, label in (("head_digest", "HEAD"), ("get_digest", "GET")):
        goals.append(_check(f"3 {label} manifest by digest ≥ 1.5× direct (cache)",
                            _ratio(results, row, "rps", "direct"), 1.5, True, ratio_fmt))
    mine, theirs = med(results, "image_storm", "proxy", "wall_s"), med(results, "image_storm", "direct", "wall_s")
    goals.append(_check(f"8 pull storm of one image ({n_pulls} clients) faster than direct",
                        theirs / mine if mine and theirs else None, 1.0, True, "{:.2f}× direct's speed",
                        strict=True))
    storm = results.get(("storm", "proxy"))
    text = f"7 {n_pulls}/{n_pulls} concurrent pulls with right digests"
    if quick:
        text += " (the issue's target is 200; --quick uses 50)"
    if storm is None or not storm.metrics:
        never_ran = storm is None or storm.errors == [NOT_STARTED]
        goals.append(Goal(text, "–", "n/a" if never_ran else "missed"))
    else:
        worst = min(int(m["digests_ok"]) for m in storm.metrics)
        all_ok = worst == n_pulls and not storm.errors
        goals.append(Goal(text, f"{worst}/{n_pulls} (worst run)", "met" if all_ok else "missed"))
    # issue 15 item 4: buffers shared by the transfers in flight (proxy.http.budget), 463 MiB before
    s = spread(storm, "peak_rss_mib") if storm is not None and storm.metrics else None
    goals.append(_check(f"7 peak RSS ≤ 128 MiB, {n_pulls} concurrent pulls", s.high if s else None, 128, False,
                        "{:.1f} MiB"))
    return goals


def render(goals: list[Goal]) -> str:
    lines = ["| target (issue) | measured (proxy) | verdict |", "|---|---|---|"]
    for g in goals:
        mark = {"met": "✅ met", "missed": "❌ missed"}.get(g.verdict, "n/a")
        lines.append(f"| {g.text} | {g.measured} | {mark} |")
    return "\n".join(lines)
