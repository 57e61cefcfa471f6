"""The pid file: ``reload`` must reach the instance of its config and no other process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from proxy.ops.instance import InstanceError, claim, live_pid, release, signal_instance


def _sleeper(*argv: str) -> subprocess.Popen[bytes]:
    """A process whose command line looks like ``... proxy serve ...`` (argv[0] of -c is "-c").

    Returns once the child has exec'd: before that, /proc shows the parent's command line.
    """
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv])
    deadline = time.monotonic() + 10
    while b"sleep(60)" not in Path(f"/proc/{child.pid}/cmdline").read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return child


def test_claim_writes_our_pid_and_release_removes_only_ours(tmp_path: Path) -> None:
    pid_file = tmp_path / "run" / "rap.pid"
    claim(pid_file)
    assert pid_file.read_text() == f"{os.getpid()}\n"
    pid_file.write_text("1\n")  # another instance took over the file since
    release(pid_file)
    assert pid_file.exists()
    pid_file.write_text(f"{os.getpid()}\n")
    release(pid_file)
    assert not pid_file.exists()


def test_a_stale_or_garbage_pid_file_is_not_an_instance(tmp_path: Path) -> None:
    pid_file = tmp_path / "rap.pid"
    assert live_pid(pid_file) is None  # missing
    pid_file.write_text("not a pid\n")
    assert live_pid(pid_file) is None
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pid_file.write_text(f"{dead.pid}\n")
    assert live_pid(pid_file) is None
    claim(pid_file)  # a stale file is taken over
    assert pid_file.read_text() == f"{os.getpid()}\n"


def test_a_live_process_that_is_not_a_serve_is_never_signalled(tmp_path: Path) -> None:
    other = _sleeper("unrelated")
    try:
        pid_file = tmp_path / "rap.pid"
        pid_file.write_text(f"{other.pid}\n")  # a recycled pid: some other program now
        with pytest.raises(InstanceError, match="no running instance"):
            signal_instance(pid_file)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_reload_signals_the_serve_named_in_the_pid_file_and_claim_refuses_a_second(tmp_path: Path) -> None:
    serve = _sleeper("proxy", "serve", "--config", "x.yml")
    try:
        pid_file = tmp_path / "rap.pid"
        pid_file.write_text(f"{serve.pid}\n")
        assert live_pid(pid_file) == serve.pid
        with pytest.raises(InstanceError, match=f"pid {serve.pid}"):
            claim(pid_file)  # two serves of one config
        assert signal_instance(pid_file, signal.SIGTERM) == serve.pid
        assert serve.wait(timeout=10) == -signal.SIGTERM
    finally:
        serve.kill()
        serve.wait()


def test_no_pid_file_configured_says_what_to_use_instead() -> None:
    with pytest.raises(InstanceError, match="systemctl reload"):
        signal_instance(None)
