"""The CLI starts without the server's stack: no aiohttp, nothing from proxy.server/http/observability.

A user edit or a maintenance switch must work (and start fast) on a box
where aiohttp is broken, mid-upgrade or slow to import; only ``serve``
needs it. Checked in a fresh interpreter, since this test process has long
imported aiohttp for other tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SERVER_SIDE = ("aiohttp", "proxy.server", "proxy.http", "proxy.observability")

SCRIPT = """
import json, sys
{body}
loaded = sorted(m for m in sys.modules if m.split(".")[0] == "aiohttp" or m.startswith({server_side!r}))
print("LOADED=" + json.dumps(loaded))
"""


def loaded_after(body: str) -> tuple[list[str], subprocess.CompletedProcess[str]]:
    code = SCRIPT.format(body=body, server_side=SERVER_SIDE)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("LOADED=")]
    assert lines, done
    return json.loads(lines[-1].removeprefix("LOADED=")), done


def test_importing_proxy_cli_loads_no_server_module() -> None:
    loaded, _ = loaded_after("import proxy.cli")
    assert loaded == []


def test_the_server_is_importable_in_the_same_check() -> None:
    """The check above can fail: importing what ``serve`` imports does show up."""
    loaded, _ = loaded_after("import proxy.server")
    assert "aiohttp" in loaded and "proxy.server" in loaded


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "proxy.yml"
    path.write_text("backend: http://127.0.0.1:9\nadmin: off\n", encoding="utf-8")
    (tmp_path / "users.htpasswd").write_text("mark:$2y$04$" + "x" * 53 + "\n", encoding="utf-8")
    (tmp_path / "users.groups").write_text("pusher: mark\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("argv", [
    ["user", "list", "--htpasswd", "{dir}/users.htpasswd"],
    ["maintenance", "status", "--config", "{config}"],
    ["group", "list", "--config", "{config}"],
    ["check-config", "--config", "{config}"],
], ids=lambda argv: " ".join(argv[:2]))
def test_running_a_command_loads_no_server_module(config: Path, argv: list[str]) -> None:
    argv = [a.format(dir=config.parent, config=config) for a in argv]
    loaded, done = loaded_after(f"from proxy.cli import main\ncode = main({argv!r})\nassert code == 0, code")
    assert done.returncode == 0, done
    assert loaded == [], f"{' '.join(argv)} imported {loaded}"
