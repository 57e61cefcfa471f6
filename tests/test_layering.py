"""Dependencies flow one way; this file fails when they do not.

Layers, lowest first; a module may import from its own layer and the ones
before it, never after:

    auth  <  proxy.config  <  proxy.ops  <  proxy.http  <  proxy.observability  <  proxy.server  <  proxy.cli

Imports are read from the source (every ``import`` statement, including
ones inside functions), so a lazy import cannot hide a wrong direction,
except in ``proxy.cli``, the top, which imports the server lazily to serve.
Separately, importing ``auth`` or ``proxy.cli`` must not import aiohttp:
checked in a fresh interpreter.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["auth", "proxy.config", "proxy.ops", "proxy.http", "proxy.ui", "proxy.observability", "proxy.server",
          "proxy.cli"]
TOP_LEVEL_OK = {"proxy", "proxy.__main__"}  # the package docstring and ``python -m proxy``


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int | None:
    for index in range(len(LAYERS) - 1, -1, -1):
        name = LAYERS[index]
        if module == name or module.startswith(name + "."):
            return index
    return None


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
    return found


SOURCES = sorted(p for pkg in ("auth", "proxy") for p in (ROOT / pkg).rglob("*.py"))


def test_every_module_belongs_to_a_layer() -> None:
    orphans = [_module_name(p) for p in SOURCES if _layer(_module_name(p)) is None]
    assert set(orphans) <= TOP_LEVEL_OK, f"modules outside every layer: {orphans}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: _module_name(p))
def test_imports_only_point_down(path: Path) -> None:
    module = _module_name(path)
    own = _layer(module)
    if own is None:
        return
    wrong = []
    for line, imported in _imports(path):
        target = _layer(imported)
        if target is not None and target > own:
            wrong.append(f"{path.relative_to(ROOT)}:{line}: {module} ({LAYERS[own]}) imports {imported} "
                         f"({LAYERS[target]})")
        if own == 0 and (imported == "aiohttp" or imported.startswith(("aiohttp.", "multidict", "yarl"))):
            wrong.append(f"{path.relative_to(ROOT)}:{line}: auth imports {imported}")
    assert not wrong, "\n".join(wrong)


def _modules_after_import(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60,
                          check=True)
    return set(done.stdout.split())


def test_auth_imports_no_aiohttp_and_no_proxy() -> None:
    statement = "; ".join(f"import {_module_name(p)}" for p in SOURCES if _module_name(p).startswith("auth"))
    loaded = _modules_after_import(statement)
    assert not {m for m in loaded if m.split(".")[0] in ("aiohttp", "proxy")}


def test_cli_imports_no_aiohttp_and_no_server() -> None:
    loaded = _modules_after_import("import proxy.cli")
    assert "aiohttp" not in loaded
    assert not {m for m in loaded if m.startswith(("proxy.http", "proxy.server", "proxy.observability"))}
