"""Where the CLI finds proxy.yml: --config, $REGISTRY_AUTH_PROXY_CONFIG, ./proxy.yml, /etc/registry-auth-proxy."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config.load import CONFIG_ENV, find_config, load_or_exit


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    cwd, etc = tmp_path / "cwd", tmp_path / "etc"
    cwd.mkdir()
    etc.mkdir()
    monkeypatch.chdir(cwd)
    return cwd / "proxy.yml", etc / "proxy.yml", tmp_path / "env.yml"


def test_the_order_is_flag_env_cwd_system(places: tuple[Path, Path, Path]) -> None:
    local, system, env_file = places
    env = {CONFIG_ENV: str(env_file)}
    system.write_text("{}\n")
    assert find_config(None, {}, system) == system  # only the packaged one exists
    local.write_text("{}\n")
    assert find_config(None, {}, system) == local.resolve()  # ./proxy.yml wins over /etc
    assert find_config(None, env, system) == env_file.resolve()  # the variable over both
    assert find_config("given.yml", env, system) == Path("given.yml").resolve()  # the flag over all


def test_with_nothing_found_the_error_lists_where_it_looked(places, capsys) -> None:
    with pytest.raises(SystemExit) as info:
        load_or_exit(None)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "proxy.yml: cannot read" in err and "REGISTRY_AUTH_PROXY_CONFIG" in err
    assert "/etc/registry-auth-proxy/proxy.yml" in err


def test_commands_that_act_on_a_file_say_which_one(places, capsys) -> None:
    local, _, _ = places
    local.write_text("tls: off\n")
    config = load_or_exit(None, announce=True)
    assert config.path == local.resolve()
    assert f"using config {local.resolve()}" in capsys.readouterr().err
