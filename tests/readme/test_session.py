"""The README runner itself: one terminal's state across blocks, set -e per block, prompts, timeouts.

If the runner passed a block that failed, the README run would prove nothing,
so its verdicts are tested here with plain bash (no daemons: the fast loop).
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.readme.session import BashSession, fresh_copy

PROMPTING = """python3 - <<'PY'
import getpass
first = getpass.getpass("New password: ")
second = getpass.getpass("Re-type new password: ")
print("match" if first == second else "differ", len(first))
PY"""


@pytest.fixture
def session(tmp_path: Path) -> BashSession:
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LANG": "C.UTF-8"}
    return BashSession(root, env, work)


def test_exports_and_cd_carry_over_from_block_to_block(session: BashSession) -> None:
    assert session.run("export GREETING=hello\nLOCAL=gone\ncd sub", timeout=30).returncode == 0
    ran = session.run('echo "$GREETING ${LOCAL:-unset} $(basename "$PWD")"', timeout=30)
    assert (ran.returncode, ran.output.strip()) == (0, "hello unset sub")


def test_a_failing_command_stops_its_block_with_its_status(session: BashSession) -> None:
    ran = session.run("echo before\n(exit 7)\necho after", timeout=30)
    assert ran.returncode == 7
    assert "before" in ran.output and "after" not in ran.output
    assert session.run("echo next block runs", timeout=30).returncode == 0


def test_answers_are_typed_at_password_prompts_on_a_terminal(session: BashSession) -> None:
    ran = session.run(PROMPTING, timeout=30, answers=["s3cret", "s3cret"])
    assert (ran.returncode, ran.problems) == (0, [])
    assert "match 6" in ran.output
    assert "s3cret" not in ran.output  # typed with echo off, as a person's password is


def test_a_prompt_beyond_the_answers_and_unused_answers_are_problems(session: BashSession) -> None:
    short = session.run(PROMPTING, timeout=30, answers=["only-one"])
    assert short.problems == ["prompted after all 1 answer(s) were typed"]
    extra = session.run("echo no prompt here", timeout=30, answers=["unused"])
    assert extra.problems == ["only 0 of 1 answer(s) were asked for"]


def test_a_block_past_its_timeout_is_killed_with_what_it_started(session: BashSession, tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    ran = session.run(f"sleep 300 &\necho $! > {pidfile}\nwait", timeout=1)
    assert ran.problems == ["timed out after 1 s"]
    child = Path(f"/proc/{pidfile.read_text().strip()}/stat")
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child), child.read_text()


def _alive(stat: Path) -> bool:
    """Running, sleeping or stopped; a zombie (dead, not yet reaped by its new parent) is not alive."""
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_fresh_copy_takes_tracked_and_new_files_but_not_ignored_ones(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / ".gitignore").write_text("ignored.txt\n")
    (repo / "tracked.txt").write_text("t")
    (repo / "gone.txt").write_text("g")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True)
    (repo / "gone.txt").unlink()
    (repo / "new.txt").write_text("n")
    (repo / "ignored.txt").write_text("i")
    copy = fresh_copy(repo, tmp_path / "copy")
    assert sorted(p.name for p in copy.iterdir()) == [".gitignore", "new.txt", "tracked.txt"]
