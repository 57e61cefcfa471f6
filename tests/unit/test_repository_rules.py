"""Per-repository rules: glob semantics, first match wins, fallback to defaults, config and table."""

from __future__ import annotations

from pathlib import Path

import pytest

from auth.globs import GlobError, compile_globs, first_match, glob_to_regex
from auth.grants import grant_scopes
from auth.policy import Access, Action, Identity, RepositoryRule, Rule
from auth.scopes import parse_scopes
from proxy.config import ConfigError, parse_config
from proxy.config_access import access_table

TEAM_A = Identity("ann", frozenset({"team-a"}))
PUSHER = Identity("mark", frozenset({"pusher"}))
READER = Identity("reader")

ACCESS = Access(
    delete=Rule.of_groups(["admins"]),
    repositories=(
        RepositoryRule("team-a/**", push=Rule.of_groups(["team-a"])),
        RepositoryRule("private/**", pull=Rule(users=True)),
        RepositoryRule("team-a/secret", pull=Rule()),  # shadowed by team-a/**: never used
    ),
)


@pytest.mark.parametrize(("pattern", "name", "matches"), [
    ("team-a/*", "team-a/x", True),
    ("team-a/*", "team-a/x/y", False),
    ("team-a/**", "team-a/x", True),
    ("team-a/**", "team-a/x/y/z", True),
    ("team-a/**", "team-a", False),
    ("team-a/**", "team-ab/x", False),
    ("**/app", "app", True),
    ("**/app", "a/b/app", True),
    ("**/app", "a/b/apps", False),
    ("a/**/b", "a/b", True),
    ("a/**/b", "a/x/y/b", True),
    ("a/**/b", "ab", False),
    ("lib?", "lib1", True),
    ("lib?", "lib/", False),
    ("*", "top", True),
    ("*", "a/b", False),
    ("**", "a/b/c", True),
    ("x.y", "xzy", False),  # the dot is literal
    ("*-dev/**", "web-dev/api", True),
])
def test_glob(pattern: str, name: str, matches: bool) -> None:
    assert (first_match(compile_globs([pattern]), name) == 0) is matches


@pytest.mark.parametrize("pattern", ["", "/a", "a/", "a//b", "A/b", "a/**b", "***", "a b", "a:b"])
def test_bad_globs_are_refused(pattern: str) -> None:
    with pytest.raises(GlobError):
        glob_to_regex(pattern)


def test_first_match_wins_and_unset_actions_fall_back_to_the_default() -> None:
    assert ACCESS.rule(Action.PUSH, "team-a/x") == Rule.of_groups(["team-a"])
    assert ACCESS.rule(Action.PULL, "team-a/secret") == Rule(anyone=True)  # team-a/** matched first
    assert ACCESS.rule(Action.DELETE, "team-a/x") == Rule.of_groups(["admins"])
    assert ACCESS.rule(Action.PUSH, "team-b/x") == Rule.of_groups(["pusher"])
    assert ACCESS.rule(Action.PULL, "private/db") == Rule(users=True)
    assert ACCESS.rule(Action.PULL, None) == ACCESS.catalog


def test_decisions_per_repository() -> None:
    assert ACCESS.allowed(TEAM_A, Action.PUSH, "team-a/x")
    assert not ACCESS.allowed(TEAM_A, Action.PUSH, "team-b/x")
    assert not ACCESS.allowed(PUSHER, Action.PUSH, "team-a/x")
    assert ACCESS.allowed(PUSHER, Action.PUSH, "team-b/x")
    assert not ACCESS.allowed(None, Action.PULL, "private/db")
    assert ACCESS.allowed(READER, Action.PULL, "private/db")


def test_token_grants_use_the_same_rules() -> None:
    scopes = parse_scopes(["repository:team-a/x:pull,push repository:team-b/x:pull,push"])
    grants = {g.name: g.actions for g in grant_scopes(ACCESS, TEAM_A, scopes)}
    assert grants == {"team-a/x": ("pull", "push"), "team-b/x": ("pull",)}
    anon = {g.name: g.actions for g in grant_scopes(ACCESS, None, parse_scopes(["repository:private/db:pull"]))}
    assert anon == {"private/db": ()}


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
    from proxy.checks import check_config

    data = {"backend": "http://127.0.0.1:9", "admin": {"listen": "off"},
            "access": {"repositories": [{"match": "team-a/**", "push": ["team-a"]}]}}
    (tmp_path / "maintenance").write_text("x\n")
    assert check_config(parse_config(data, tmp_path / "proxy.yml")) == 0
    out = capsys.readouterr().out
    assert ["team-a/**", "anyone*", "[team-a]", "[pusher]*"] in [line.split() for line in out.splitlines()]
    assert "admin:     off" in out and "maintenance: ON" in out
