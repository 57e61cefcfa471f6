"""The ``access:`` section of ``proxy.yml``: per-repository rules read from YAML, and the effective table."""

from __future__ import annotations

from pathlib import Path

import pytest

from auth.access import Access, Action, RepositoryRule, Rule
from proxy.config import ConfigError, parse_config
from proxy.config.access import access_table

ACCESS = Access(
    delete=Rule.of_groups(["admins"]),
    repositories=(
        RepositoryRule("team-a/**", push=Rule.of_groups(["team-a"])),
        RepositoryRule("private/**", pull=Rule(users=True)),
        RepositoryRule("team-a/secret", pull=Rule()),  # shadowed by team-a/**: never used
    ),
)


def test_config_reads_repositories(tmp_path: Path) -> None:
    data = {"access": {"delete": ["admins"], "repositories": [
        {"match": "team-a/**", "push": ["team-a"]},
        {"match": "private/**", "pull": "users", "delete": []},
    ]}}
    access = parse_config(data, tmp_path / "proxy.yml").access
    assert access.repositories == (
        RepositoryRule("team-a/**", push=Rule.of_groups(["team-a"])),
        RepositoryRule("private/**", pull=Rule(users=True), delete=Rule()),
    )
    assert access.rule(Action.DELETE, "private/x") == Rule()


@pytest.mark.parametrize(("repos", "key"), [
    ("team-a/**", "access.repositories"),
    ([{"push": ["a"]}], "access.repositories[0].match"),
    ([{"match": "a/**"}], "access.repositories[0]"),
    ([{"match": "a/**", "write": ["a"]}], "access.repositories[0].write"),
    ([{"match": "a/**", "push": "a"}], "access.repositories[0].push"),
    ([{"match": "a/**", "push": ["a"]}, {"match": "B/**", "push": ["a"]}], "access.repositories[1].match"),
])
def test_config_mistakes_name_the_entry(tmp_path: Path, repos: object, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"access": {"repositories": repos}}, tmp_path / "proxy.yml")
    assert f": {key}: expected " in str(err.value)


def test_table_shows_defaults_each_rule_and_inherited_cells() -> None:
    lines = access_table(ACCESS)
    assert lines[1].split() == ["(default)", "anyone", "[pusher]", "[admins]"]
    assert lines[2].split() == ["team-a/**", "anyone*", "[team-a]", "[admins]*"]
    assert lines[3].split() == ["private/**", "users", "[pusher]*", "[admins]*"]
    assert lines[4].split() == ["team-a/secret", "nobody", "[pusher]*", "[admins]*"]
    assert any("catalog" in line and "anyone" in line for line in lines)


def test_table_without_rules_is_just_the_defaults() -> None:
    lines = access_table(Access())
    assert len(lines) == 3 and "first matching" not in "\n".join(lines)


def test_check_config_prints_the_effective_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from proxy.cli.checks import check_config

    data = {"backend": "http://127.0.0.1:9", "admin": {"listen": "off"},
            "access": {"repositories": [{"match": "team-a/**", "push": ["team-a"]}]}}
    (tmp_path / "maintenance").write_text("x\n")
    assert check_config(parse_config(data, tmp_path / "proxy.yml")) == 0
    out = capsys.readouterr().out
    assert ["team-a/**", "anyone*", "[team-a]", "[pusher]*"] in [line.split() for line in out.splitlines()]
    assert "admin:     off" in out and "maintenance: ON" in out
