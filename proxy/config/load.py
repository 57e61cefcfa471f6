"""From a file name to a :class:`~proxy.config.model.Config`: what ``serve`` and every command load.

One function for all of them, so ``check-config`` judges exactly what
``serve`` will run with.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

import yaml

from proxy.config.model import Config
from proxy.config.reader import ConfigError
from proxy.config.sections import parse_config

__all__ = ["CONFIG_ENV", "DEFAULT_CONFIG_PATH", "SYSTEM_CONFIG_PATH", "find_config", "load_config", "load_or_exit"]

DEFAULT_CONFIG_PATH = "proxy.yml"
CONFIG_ENV = "REGISTRY_AUTH_PROXY_CONFIG"
SYSTEM_CONFIG_PATH = Path("/etc/registry-auth-proxy/proxy.yml")


def find_config(explicit: str | Path | None, env: Mapping[str, str] = os.environ,
                system: Path = SYSTEM_CONFIG_PATH) -> Path:
    """The config file, found the way operators expect.

    ``--config``, then ``$REGISTRY_AUTH_PROXY_CONFIG``, then ``./proxy.yml``,
    then the packaged install's ``/etc/registry-auth-proxy/proxy.yml``. When
    none exists the answer is ``./proxy.yml``, whose "cannot read" error then
    lists every place that was searched.
    """
    if explicit:
        return Path(explicit).resolve()
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).resolve()
    local = Path(DEFAULT_CONFIG_PATH).resolve()
    if local.is_file() or not system.is_file():
        return local
    return system


def searched(system: Path = SYSTEM_CONFIG_PATH) -> str:
    return f"--config, ${CONFIG_ENV}, ./{DEFAULT_CONFIG_PATH}, {system}"


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


def load_or_exit(path: str | Path | None, *, announce: bool = False) -> Config:
    """For commands: find the file, load it; the one-line error on stderr and exit 2, never a traceback.

    ``announce`` prints which file was used (on stderr, so ``--json`` output stays clean): commands that
    act on a running instance or on files say which one they picked.
    """
    found = find_config(path)
    try:
        config = load_config(found)
    except ConfigError as exc:
        hint = "" if path or found.is_file() else f" (searched {searched()})"
        print(f"registry-auth-proxy: config error: {exc}{hint}", file=sys.stderr)
        raise SystemExit(2) from None
    if announce:
        print(f"registry-auth-proxy: using config {found}", file=sys.stderr)
    return config
