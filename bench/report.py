"""Markdown tables, one per workload, with ratio columns against direct/nginx/apache."""

from __future__ import annotations

from bench.runner import Results, Runs
from bench.stats import med, num, ratio, spread, status_text, with_range


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def _problem(runs: Runs | None) -> str | None:
    """Text for a cell without numbers (n/a or error), else None."""
    if runs is None:
        return "not run"
    if runs.na is not None:
        return f"n/a ({runs.na})"
    if not runs.metrics:
        return "error: " + (runs.errors[0] if runs.errors else "no data").replace("\n", " ")[:300]
    return None


def _failed(rows: list[list[str]], name: str, label: list[str], runs: Runs | None, width: int) -> bool:
    text = _problem(runs)
    if text is None:
        return False
    rows.append([name, *label, text] + [""] * (width - len(label) - 2))
    return True


def _errors_note(results: Results, rows: list[str]) -> str:
    notes = []
    for (row, target), runs in results.items():
        if row in rows and runs.metrics and runs.errors:
            notes.append(f"- {target} / {row}: {len(runs.errors)} run(s) failed: {runs.errors[0]}")
    return ("\n\n" + "\n".join(notes)) if notes else ""


def transfer_table(results: Results, row: str, targets: list[str]) -> str:
    header = [
        "target",
        "MB/s median (min–max)",
        "vs direct",
        "vs nginx",
        "vs apache",
        "server CPU s/GB",
        "backend CPU s/GB",
        "peak RSS MiB",
    ]
    rows: list[list[str]] = []
    for t in targets:
        runs = results.get((row, t))
        if _failed(rows, t, [], runs, len(header)):
            continue
        mine = med(results, row, t, "mbps")
        rows.append(
            [
                t + (" (HTTP)" if t == "direct" else " (TLS)"),
                with_range(spread(runs, "mbps")),
                ratio(mine, med(results, row, "direct", "mbps")),
                ratio(mine, med(results, row, "nginx", "mbps")),
                ratio(mine, med(results, row, "apache", "mbps")),
                num(med(results, row, t, "cpu_s_per_gb"), 2),
                "(same)" if t == "direct" else num(med(results, row, t, "backend_cpu_s_per_gb"), 2),
                num(med(results, row, t, "peak_rss_mib"), 1),
            ]
        )
    return _table(header, rows) + _errors_note(results, [row])


def load_table(
    results: Results, rows_spec: list[tuple[str, str]], targets: list[str], baseline: dict[str, str] | None = None
) -> str:
    """Request-rate rows; `baseline` maps a row to the direct row it is compared with."""
    header = [
        "target",
        "request",
        "req/s median (min–max)",
        "vs direct",
        "p50 ms",
        "p99 ms",
        "server CPU ms/req",
        "backend CPU ms/req",
        "responses (all runs)",
    ]
    rows: list[list[str]] = []
    for row, label in rows_spec:
        base_row = (baseline or {}).get(row, row)
        for t in targets:
            runs = results.get((row, t))
            if runs is None:
                continue
            if _failed(rows, t, [label], runs, len(header)):
                continue
            rows.append(
                [
                    t,
                    label,
                    with_range(spread(runs, "rps")),
                    ratio(med(results, row, t, "rps"), med(results, base_row, "direct", "rps")),
                    num(med(results, row, t, "p50_ms"), 1),
                    num(med(results, row, t, "p99_ms"), 1),
                    num(med(results, row, t, "cpu_ms_per_req"), 3),
                    "(same)" if t == "direct" else num(med(results, row, t, "backend_cpu_ms_per_req"), 3),
                    status_text(runs),
                ]
            )
    if not rows:
        return "_not run: no selected target applies_"
    return _table(header, rows) + _errors_note(results, [r for r, _ in rows_spec])


def rss_table(results: Results, targets: list[str], big_label: str) -> str:
    header = [
        "target",
        "idle MiB",
        f"{big_label} pull, peak MiB",
        f"{big_label} push, peak MiB",
        "2 GiB pull, peak MiB",
        "2 GiB push, peak MiB",
    ]
    rows: list[list[str]] = []
    for t in targets:
        cells = [t, num(med(results, "idle", t, "idle_rss_mib"), 1)]
        for row in ("pull", "push", "huge_pull", "huge_push"):
            runs = results.get((row, t))
            problem = _problem(runs)
            if row.startswith("huge") and runs is None:
                cells.append("(ours only)")
            elif problem is not None:
                cells.append(problem if runs and runs.na else "error")
            else:
                s = spread(runs, "peak_rss_mib")
                cells.append(num(s.high if s else None, 1))  # the peak over all rounds
        rows.append(cells)
    return _table(header, rows)


def storm_table(results: Results, targets: list[str], n: int, size_mib: int) -> str:
    header = [
        "target",
        "completed",
        "digests ok",
        "wall s median (min–max)",
        "aggregate MB/s",
        "server CPU s",
        "backend CPU s",
        "peak RSS MiB",
    ]
    rows: list[list[str]] = []
    for t in targets:
        runs = results.get(("storm", t))
        if _failed(rows, t, [], runs, len(header)):
            continue
        assert runs is not None
        completed = min(int(m["completed"]) for m in runs.metrics)
        ok = min(int(m["digests_ok"]) for m in runs.metrics)
        rows.append(
            [
                t,
                f"{completed}/{n} (worst run)",
                f"{ok}/{n} (worst run)",
                with_range(spread(runs, "wall_s"), 2),
                num(med(results, "storm", t, "mbps")),
                num(med(results, "storm", t, "cpu_s"), 2),
                "(same)" if t == "direct" else num(med(results, "storm", t, "backend_cpu_s"), 2),
                num(med(results, "storm", t, "peak_rss_mib"), 1),
            ]
        )
    title = f"{n} concurrent anonymous pulls of a {size_mib} MiB blob (aiohttp, one connection each)"
    return f"_{title}_\n\n" + _table(header, rows) + _errors_note(results, ["storm"])


def image_storm_table(results: Results, targets: list[str], n: int) -> str:
    """Workload 8: wall time is the number that matters (every client waits for its whole image)."""
    header = ["target", "clients ok", "wall s median (min–max)", "speed vs direct", "req/s", "server CPU s",
              "backend CPU s", "peak RSS MiB"]
    rows: list[list[str]] = []
    direct = med(results, "image_storm", "direct", "wall_s")
    for t in targets:
        runs = results.get(("image_storm", t))
        if _failed(rows, t, [], runs, len(header)):
            continue
        assert runs is not None
        mine = med(results, "image_storm", t, "wall_s")
        rows.append([
            t,
            f"{min(int(m['completed']) for m in runs.metrics)}/{n} (worst run)",
            with_range(spread(runs, "wall_s"), 2),
            ratio(direct, mine),  # > 1: faster than direct
            num(med(results, "image_storm", t, "rps")),
            num(med(results, "image_storm", t, "cpu_s"), 2),
            "(same)" if t == "direct" else num(med(results, "image_storm", t, "backend_cpu_s"), 2),
            num(med(results, "image_storm", t, "peak_rss_mib"), 1),
        ])
    return _table(header, rows) + _errors_note(results, ["image_storm"])
