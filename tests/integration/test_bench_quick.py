"""The benchmark must not rot: ``python -m bench --quick`` runs and prints every row.

Only completion and shape are asserted here; the figures themselves live in
bench/RESULTS.md. No timing assertion anywhere.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SECTIONS = ["## Physical limit", "## 1. Pull", "## 2. Push", "## 3. Small reads", "## 4. Authenticated writes",
            "## 5. The same writes with a Bearer token", "## 6. Peak RSS", "## 7. Concurrent anonymous pulls",
            "## Targets from the issue"]
TARGETS = ["direct", "proxy", "apache", "nginx"]


def test_bench_quick_completes_and_prints_every_row(tmp_path):
    out = tmp_path / "RESULTS-quick.md"
    run = subprocess.run([sys.executable, "-m", "bench", "--quick", "--out", str(out)], cwd=REPO,
                         capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, run.stderr[-3000:]
    text = out.read_text()
    for section in SECTIONS:
        assert section in text, section
    assert "did not start" not in text, text[:3000]
    pull = text.split("## 1. Pull", 1)[1].split("## 2.", 1)[0]
    for target in TARGETS:
        assert f"| {target}" in pull, (target, pull)


def test_the_lever_tools_run_and_print_their_rows() -> None:
    """``bench.head_ab`` and ``bench.floors`` (issue 15's A/B and floors): one short round each, every row printed."""
    ab = subprocess.run([sys.executable, "-m", "bench.head_ab", "--rounds", "1", "--seconds", "1", "proxy=."],
                        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert ab.returncode == 0, ab.stderr[-3000:]
    medians = ab.stdout.split("medians:", 1)[1]
    for name in ("direct", "proxy"):
        assert f"  {name} " in medians and "x direct" in medians, ab.stdout
    assert "200×" in ab.stdout and "errors" not in ab.stdout, ab.stdout
    floors = subprocess.run([sys.executable, "-m", "bench.floors", "--rounds", "1"], cwd=REPO,
                            capture_output=True, text=True, timeout=300, check=False)
    assert floors.returncode == 0, floors.stderr[-3000:]
    for kind in ("direct", "hello", "aiohttp-client", "raw-client", "proxy"):
        assert any(line.startswith(f"{kind} ") and "ms CPU/req" in line and "200×" in line
                   for line in floors.stdout.splitlines()), floors.stdout


def test_the_levers_table_is_carried_into_the_committed_results() -> None:
    """bench/LEVERS.md goes into every full run's RESULTS.md, one heading level down, marked as not measured there."""
    from bench import document

    section = document.levers()
    assert section.startswith("## Levers tried for issue 15 (from `bench/LEVERS.md`, not measured by this run)")
    assert "\n### The floor under the HEAD goal" in section and "\n## " not in section
    assert section in (REPO / "bench" / "RESULTS.md").read_text(encoding="utf-8")
