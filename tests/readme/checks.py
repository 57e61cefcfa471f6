"""Checks for the README's non-command blocks: YAML parses, proxy.yml parts load, output matches.

A ``proxy.yml`` block is merged into the repository's own proxy.yml (the file the
demo serves) and given to ``check-config``, which must accept it. An ``output
check-config`` block is what check-config prints for the last ``proxy.yml`` block
above it: its lines must appear in that output, in order (``drop=TEXT`` first
removes the snippet's lines containing TEXT, for "without this line it warns").
"""

from __future__ import annotations

import copy
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.readme.blocks import Annotation, Block
from tests.support.ports import free_port

# Groups the README's examples name ("with a group file defining pusher, team-a, admins and ci").
EXAMPLE_GROUPS = "pusher: mark\nteam-a: mark\nadmins: mark\nci: mark\n"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    text: str


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Recursive merge: a snippet's keys replace the base's, nested sections merge."""
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def check_config(repo: Path, snippet: str) -> subprocess.CompletedProcess[str]:
    """``check-config`` on the repository's proxy.yml with ``snippet`` merged in, in a scratch folder.

    The backend is moved to a free port unless the snippet sets one, so whatever
    listens on :5000 on this machine cannot change the verdict.
    """
    part = yaml.safe_load(snippet)
    if not isinstance(part, dict):
        raise AssertionError(f"not a YAML mapping: {snippet[:80]!r}")
    config = merge(yaml.safe_load((repo / "proxy.yml").read_text()), part)
    if "backend" not in part:
        config["backend"] = f"http://127.0.0.1:{free_port()}"
    with tempfile.TemporaryDirectory(prefix="readme-cfg") as scratch:
        folder = Path(scratch)
        shutil.copytree(repo / "certs-example", folder / "certs-example")
        (folder / "users.htpasswd").write_text("")
        (folder / "users.groups").write_text(EXAMPLE_GROUPS)
        (folder / "proxy.yml").write_text(yaml.safe_dump(config))
        return subprocess.run(
            [sys.executable, "-m", "proxy", "check-config", "--config", str(folder / "proxy.yml")],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
        )


def _contains_lines(output: str, expected: str) -> bool:
    """True if ``expected``'s lines appear in ``output`` as consecutive lines (trailing spaces ignored)."""
    have = [line.rstrip() for line in output.splitlines()]
    want = [line.rstrip() for line in expected.splitlines()]
    return any(have[i:i + len(want)] == want for i in range(len(have) - len(want) + 1))


def check_file_block(repo: Path, block: Block, note: Annotation, last_config: Block | None) -> Verdict:
    """The verdict for one ``file`` block (``haproxy.cfg`` needs haproxy: integration only)."""
    kind = note.file_kind
    if kind in {"text", "output"} and not note.checks:
        return Verdict(True, f"file ({kind}): nothing to run")
    if kind == "yaml":
        yaml.safe_load(block.text)
        return Verdict(True, "file: YAML parses")
    if kind == "proxy.yml":
        result = check_config(repo, block.text)
        ok = result.returncode == 0
        return Verdict(ok, "file: merged into proxy.yml, check-config OK" if ok else
                       f"file: check-config exit {result.returncode}: {result.stderr.strip()[-300:]}")
    if kind == "haproxy.cfg":
        with tempfile.NamedTemporaryFile("w", suffix=".cfg") as cfg:
            cfg.write(block.text + "\n")
            cfg.flush()
            result = subprocess.run(["haproxy", "-c", "-f", cfg.name], capture_output=True, text=True,
                                    timeout=60, stdin=subprocess.DEVNULL, check=False)
        ok = result.returncode == 0
        return Verdict(ok, "file: haproxy -c accepts it" if ok else
                       f"file: haproxy -c exit {result.returncode}: {(result.stdout + result.stderr).strip()[-300:]}")
    return _check_output(repo, block, note, last_config)


def _check_output(repo: Path, block: Block, note: Annotation, last_config: Block | None) -> Verdict:
    if note.checks[0] != "check-config" or last_config is None:
        return Verdict(False, f"file: cannot check output against {note.checks!r} (no proxy.yml block above)")
    snippet = last_config.text
    drops = [word.partition("=")[2] for word in note.checks[1:] if word.startswith("drop=")]
    for text in drops:
        snippet = "\n".join(line for line in snippet.splitlines() if text not in line)
    result = check_config(repo, snippet)
    if _contains_lines(result.stdout + result.stderr, block.text):
        how = f" without {shlex.join(drops)}" if drops else ""
        return Verdict(True, f"file: printed by check-config for README.md:{last_config.line}{how}")
    return Verdict(False, f"file: check-config for README.md:{last_config.line} printed instead:\n"
                          f"{result.stdout}{result.stderr}")
