"""From a file name to a :class:`~proxy.config.model.Config`: what ``serve`` and every command load.

One function for all of them, so ``check-config`` judges exactly what
``serve`` will run with.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from proxy.config.model import Config
from proxy.config.reader import ConfigError
from proxy.config.sections import parse_config

__all__ = ["DEFAULT_CONFIG_PATH", "load_config", "load_or_exit"]

DEFAULT_CONFIG_PATH = "proxy.yml"


def load_config(path: str | Path) -> Config:
    """Read and parse ``path``; raises :class:`ConfigError` with the one line to show."""
    path = Path(path).resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    return parse_config(data if data is not None else {}, path)


def load_or_exit(path: str | Path) -> Config:
    """For commands: the one-line error on stderr and exit status 2, never a traceback."""
    try:
        return load_config(path)
    except ConfigError as exc:
        print(f"registry-auth-proxy: config error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
