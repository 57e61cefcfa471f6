"""Run README command blocks as a reader would: in a fresh copy, in order, one terminal.

Each block runs in its own ``bash`` with ``set -e`` (so a failing command stops
its block and the block's verdict is that command's), started from the exports
and working directory the previous block left: ``export PATH=...`` and ``cd``
carry over as in one terminal, while every block still gets its own timeout and
process group to kill. A block annotated ``tty=`` runs on a pseudo-terminal and
the answers are typed at its password prompts, so ``docker login -u mark`` and
``user add`` run exactly as written, prompting included.
"""

from __future__ import annotations

import codecs
import contextlib
import fcntl
import os
import re
import select
import shlex
import shutil
import signal
import subprocess
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# $1: the state file (exports + cd) to start from and to rewrite; $2: the block.
WRAPPER = r"""
source "$1"
trap '{ export -p; printf "cd %q\n" "$PWD"; } >"$1.next"' EXIT
set -e
source "$2"
"""
PROMPT = re.compile(r"(?i)password[^\n]*:\s*$")


@dataclass
class Ran:
    """What one block did: exit status, merged output, wall time, and what went wrong around it."""

    returncode: int
    output: str
    seconds: float
    problems: list[str] = field(default_factory=list)


def fresh_copy(repo: Path, dest: Path) -> Path:
    """Copy the tracked and untracked-not-ignored files: a clean clone in CI, uncommitted work locally."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=repo, check=True,
                            capture_output=True, timeout=60).stdout.decode()
    for name in filter(None, listed.split("\0")):
        src, target = repo / name, dest / name
        if not src.exists() and not src.is_symlink():
            continue  # tracked but deleted in the working tree
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_symlink():
            target.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, target)
    return dest


def _set_controlling_tty() -> None:  # pragma: no cover - runs in the child
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class BashSession:
    """One reader's terminal in ``root``: blocks run in order, state carried from one to the next."""

    def __init__(self, root: Path, env: dict[str, str], work: Path) -> None:
        self.root = root
        self.env = env
        self.work = work
        self.state = work / "state.sh"
        self.state.write_text(f"cd {shlex.quote(str(root))}\n")
        self._count = 0

    def run(self, text: str, *, timeout: float, answers: Sequence[str] | None = None) -> Ran:
        self._count += 1
        block = self.work / f"block-{self._count:02d}.sh"
        block.write_text(text + "\n")
        command = ["bash", "--noprofile", "--norc", "-c", WRAPPER, "bash", str(self.state), str(block)]
        started = time.monotonic()
        ran = self._run_plain(command, timeout) if answers is None else self._run_tty(command, timeout, list(answers))
        ran.seconds = time.monotonic() - started
        following = self.state.with_name(self.state.name + ".next")
        if following.exists():
            following.replace(self.state)
        return ran

    def _run_plain(self, command: list[str], timeout: float) -> Ran:
        log = self.work / f"block-{self._count:02d}.log"
        with log.open("wb") as out:
            # Output to a file, not a pipe: a daemon a block starts may keep the descriptor open.
            proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                    cwd=self.root, env=self.env, start_new_session=True)
            problems = []
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                problems.append(f"timed out after {timeout:.0f} s")
                _kill_group(proc)
        return Ran(proc.returncode, log.read_text(errors="replace"), 0.0, problems)

    def _run_tty(self, command: list[str], timeout: float, answers: list[str]) -> Ran:
        master, slave = os.openpty()
        try:
            proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, cwd=self.root,
                                    env=self.env, start_new_session=True, preexec_fn=_set_controlling_tty)
        finally:
            os.close(slave)
        chunks: list[str] = []
        since_answer = ""
        problems: list[str] = []
        given = 0
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a character may span two reads
        deadline = time.monotonic() + timeout
        try:
            while True:
                if time.monotonic() > deadline:
                    problems.append(f"timed out after {timeout:.0f} s")
                    _kill_group(proc)
                    break
                ready, _, _ = select.select([master], [], [], 0.2)
                if not ready:
                    if proc.poll() is not None:
                        break
                    continue
                try:
                    raw = os.read(master, 65536)
                except OSError:  # EIO: every holder of the terminal's other end has closed it
                    break
                if not raw:
                    break
                data = decoder.decode(raw)
                chunks.append(data)
                since_answer += data
                if PROMPT.search(since_answer.replace("\r", "").rsplit("\n", 1)[-1]):
                    if given == len(answers):
                        problems.append(f"prompted after all {len(answers)} answer(s) were typed")
                        _kill_group(proc)
                        break
                    os.write(master, answers[given].encode() + b"\n")
                    given += 1
                    since_answer = ""
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                problems.append("did not exit after its terminal closed")
                _kill_group(proc)
        finally:
            os.close(master)
        if given < len(answers) and not problems:
            problems.append(f"only {given} of {len(answers)} answer(s) were asked for")
        output = "".join(chunks).replace("\r\n", "\n").replace("\r", "\n")
        (self.work / f"block-{self._count:02d}.log").write_text(output)
        return Ran(proc.returncode, output, 0.0, problems)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the block's process group (it leads its own session), then SIGKILL whatever is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(5)
