"""The README, run as written: every command block, in order, in a fresh copy, as root.

This is what keeps the documentation and the behaviour from drifting apart: the
demo, the walk-through with docker, podman, skopeo and curl, users and groups,
maintenance, gc, the registry CLI and the development loop run here exactly as a
reader types them (``<!-- readme: ... -->`` annotations say how; see
tests/readme/blocks.py). The test prints one line per block, with its verdict,
and fails on any block that failed, any block without an annotation, and any
file block whose check failed.

The demo uses fixed ports (5000, 5043, admin 9102) and installs its CA under
/etc/docker/certs.d and /etc/containers/certs.d; the test refuses to start when
those are taken, and always runs ``bash deploy/demo.sh stop`` at the end.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.readme.blocks import AnnotationError, Block, readme_blocks
from tests.readme.checks import check_file_block
from tests.readme.environment import TRUST_FILES, foreign_trust, load_local_image, reader_env
from tests.readme.session import BashSession, Ran, fresh_copy
from tests.support.dockerd import DockerDaemon
from tests.support.ports import port_open
from tests.support.proxyproc import REPO_ROOT

pytestmark = pytest.mark.integration

DEMO_PORTS = {5000: "docker-registry", 5043: "the proxy", 9102: "the proxy's admin listener"}
DEFAULT_TIMEOUT = 180.0


@dataclass(frozen=True)
class Outcome:
    block: Block
    ok: bool
    verdict: str
    detail: str = ""


def _run_verdict(block: Block, ran: Ran, fails: str | None) -> Outcome:
    tail = "\n".join(ran.output.rstrip().splitlines()[-25:])
    took = f"{ran.seconds:.1f} s"
    if ran.problems:
        return Outcome(block, False, f"ran and failed: {'; '.join(ran.problems)} ({took})", tail)
    if fails is not None:
        if ran.returncode != 0 and fails in ran.output:
            return Outcome(block, True, f"ran OK: refused as documented (exit {ran.returncode}, {fails!r}; {took})")
        return Outcome(block, False, f"ran and failed: expected a refusal with {fails!r}, "
                                     f"got exit {ran.returncode} ({took})", tail)
    if ran.returncode == 0:
        return Outcome(block, True, f"ran OK ({took})")
    return Outcome(block, False, f"ran and failed: exit {ran.returncode} ({took})", tail)


def _table(outcomes: list[Outcome]) -> str:
    width = max(len(f"{o.block.line}") + len(o.block.ident) for o in outcomes) + 8
    lines = ["--- README.md command blocks (line  section: first line  verdict)"]
    for o in outcomes:
        lines.append(f"{'  ' if o.ok else '✗ '}{f'{o.block.line:4d}  {o.block.ident}':<{width}} {o.verdict}")
    return "\n".join(lines)


def _preflight() -> None:
    busy = [f"{port} ({what})" for port, what in DEMO_PORTS.items() if port_open("127.0.0.1", port)]
    assert not busy, (f"the README's demo needs 127.0.0.1 ports {', '.join(busy)} free, and something listens there: "
                      "stop it (a demo from a clone: `bash deploy/demo.sh stop`) and run again")
    foreign = foreign_trust()
    assert not foreign, (f"{', '.join(map(str, foreign))} hold(s) a CA other than certs-example/ca.crt; the demo "
                         "keeps an existing file, so clients would distrust it: move it away and run again")


def test_readme_command_blocks_run_as_written(docker_daemon: DockerDaemon, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    _preflight()
    trusted_before = {path for path in TRUST_FILES if path.exists()}
    root = fresh_copy(REPO_ROOT, tmp_path / "clone")
    work = tmp_path / "reader"
    work.mkdir()
    load_local_image(docker_daemon.client(tmp_path / "docker"))
    outcomes: list[Outcome] = []
    with reader_env(work, docker_daemon.docker_sock) as env:
        session = BashSession(root, env, work)
        last_config: Block | None = None
        try:
            for block in readme_blocks(root / "README.md"):
                try:
                    note = block.annotation()
                except AnnotationError as exc:
                    outcomes.append(Outcome(block, False, "not run: no valid annotation", str(exc)))
                    continue
                if note.kind == "skip":
                    outcomes.append(Outcome(block, True, f"not run: {note.reason}"))
                elif note.kind == "file":
                    verdict = check_file_block(root, block, note, last_config)
                    outcomes.append(Outcome(block, verdict.ok, verdict.text))
                    last_config = block if note.file_kind == "proxy.yml" else last_config
                else:
                    ran = session.run(block.text, timeout=note.timeout or DEFAULT_TIMEOUT, answers=note.tty)
                    outcomes.append(_run_verdict(block, ran, note.fails))
        finally:
            stop = subprocess.run(["bash", "deploy/demo.sh", "stop"], cwd=root, env=env, capture_output=True,
                                  text=True, timeout=60, stdin=subprocess.DEVNULL, check=False)
    table = _table(outcomes)
    with capsys.disabled():
        print(f"\n{table}")
    failed = [o for o in outcomes if not o.ok]
    details = "\n".join(f"--- README.md:{o.block.line} {o.block.ident}: {o.verdict}\n{o.detail}" for o in failed)
    assert not failed, f"{len(failed)} README block(s) failed\n{table}\n{details}"
    assert any(o.verdict.startswith("ran OK") for o in outcomes), table  # the README still has commands to run
    assert stop.returncode == 0, stop.stdout + stop.stderr
    left = [port for port in DEMO_PORTS if port_open("127.0.0.1", port)]
    assert not left, f"`bash deploy/demo.sh stop` left ports {left} listening"
    left_trust = {path for path in TRUST_FILES if path.exists()} - trusted_before
    assert not left_trust, f"`bash deploy/demo.sh stop` left {sorted(map(str, left_trust))} behind"
    shutil.rmtree(root)  # the copy holds two venvs; kept only when the test failed, to look at
