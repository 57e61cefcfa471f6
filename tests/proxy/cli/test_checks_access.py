"""check-config's policy warnings: writes without pull, and groups the group file does not define."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from auth.access import Access, RepositoryRule, Rule
from auth.userfiles.groups import parse_groups
from proxy.cli.checks import access_warnings, check_config
from proxy.config import load_config, parse_config

ROOT = Path(__file__).resolve().parents[3]
ALL_GROUPS = parse_groups("pusher: mark\nadmins: ann\nteam-a: tom\n")
LAN = ipaddress.ip_network("10.0.0.0/8")


def write_warnings(access: Access) -> list[str]:
    return [w for w in access_warnings(access, ALL_GROUPS) if " grants " in w]


def test_default_push_without_pull_is_named_once() -> None:
    access = Access(pull=Rule.of_groups(["admins"]),
                    repositories=(RepositoryRule("team-a/**", delete=Rule.of_groups(["admins"])),))
    warnings = write_warnings(access)
    assert len(warnings) == 1  # the entry inherits both cells: the same problem, not a second warning
    assert warnings[0].startswith("access (the defaults) grants push to [pusher] and delete to [pusher] "
                                  "but pull only to [admins]")
    assert "docker needs pull to push" in warnings[0] and "empty repository in the catalog" in warnings[0]


def test_repository_rule_that_narrows_pull_below_the_default_push() -> None:
    access = Access(repositories=(RepositoryRule("vault/**", pull=Rule.of_groups(["admins"]), delete=Rule()),))
    [warning] = write_warnings(access)
    assert warning.startswith("access.repositories[0] (vault/**) grants push to [pusher] but pull only")
    assert "delete to" not in warning  # delete: [] grants nobody, which any pull covers


def test_repository_rule_that_widens_push_beyond_pull() -> None:
    access = Access(pull=Rule(users=True), push=Rule(users=True),
                    repositories=(RepositoryRule("open/**", push=Rule(anyone=True)),))
    [warning] = write_warnings(access)
    assert warning.startswith("access.repositories[0] (open/**) grants push to anyone but pull only to users")


def test_delete_without_pull_says_why() -> None:
    [warning] = write_warnings(Access(pull=Rule(users=True), push=Rule(users=True), delete=Rule(anyone=True)))
    assert "grants delete to anyone" in warning and "digest" in warning and "push to" not in warning


def test_push_from_networks_pull_does_not_accept() -> None:
    pull_lan = Rule(anyone=True, networks=(LAN,))
    assert write_warnings(Access(pull=pull_lan, delete=Rule(groups=frozenset({"pusher"}), networks=(LAN,))))
    inside = Access(pull=pull_lan, push=Rule(groups=frozenset({"pusher"}),
                                             networks=(ipaddress.ip_network("10.1.0.0/16"),)),
                    delete=Rule(groups=frozenset({"pusher"}), networks=(LAN,)))
    assert write_warnings(inside) == []


@pytest.mark.parametrize("access", [
    Access(),
    Access(pull=Rule(users=True), push=Rule(users=True), delete=Rule.of_groups(["admins"])),
    Access(pull=Rule.of_groups(["pusher", "admins"]), delete=Rule.of_groups(["admins"])),
    Access(repositories=(RepositoryRule("vault/**", pull=Rule.of_groups(["admins", "pusher"])),)),
])
def test_pull_that_covers_the_writes_is_quiet(access: Access) -> None:
    assert access_warnings(access, ALL_GROUPS) == []


def test_undefined_group_is_named_once_with_every_place() -> None:
    access = Access(push=Rule.of_groups(["pushers"]), delete=Rule.of_groups(["pushers"]),
                    repositories=(RepositoryRule("a/**", push=Rule.of_groups(["pushers", "pusher"])),))
    warnings = [w for w in access_warnings(access, parse_groups("pusher: mark\n")) if "not defined" in w]
    assert warnings == ["group 'pushers' (in access.push, access.delete, access.repositories[0].push) is not "
                        "defined in the group file: nobody is in it, so it grants nothing"]


def test_groups_are_read_with_the_proxys_own_parser() -> None:
    # "pusher : mark" is group "pusher" to the proxy (name stripped); "two words: x" is no group at all
    groups = parse_groups("pusher : mark\ntwo words: x\nadmins:\n")
    access = Access(delete=Rule.of_groups(["admins"]), catalog=Rule.of_groups(["pusher", "two words"]),
                    pull=Rule(users=True))
    warnings = access_warnings(access, groups)
    assert [w.split(" (")[0] for w in warnings] == ["group 'two words'"]  # an empty group is defined


def test_without_a_group_file_every_named_group_is_undefined(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    data = {"backend": "http://127.0.0.1:9", "admin": "off", "auth": {"groups": None},
            "access": {"delete": ["admins"]}}
    check_config(parse_config(data, tmp_path / "proxy.yml"))
    out = capsys.readouterr().out
    for group in ("pusher", "admins"):
        assert f"warning: group '{group}' " in out and "auth.groups is not set" in out


def shipped(tmp_path: Path, groups: str) -> Path:
    """The shipped proxy.yml beside a group file, as deploy/demo.sh leaves it (paths are relative)."""
    config = tmp_path / "proxy.yml"
    config.write_text((ROOT / "proxy.yml").read_text())
    (tmp_path / "users.groups").write_text(groups)
    (tmp_path / "certs-example").symlink_to(ROOT / "certs-example")
    return config


def test_shipped_config_gives_no_policy_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = load_config(shipped(tmp_path, "pusher: mark\n"))
    assert check_config(config) == 0
    out = capsys.readouterr().out
    assert "access (the defaults)" not in out and "not defined" not in out
    assert access_warnings(config.access, parse_groups("pusher: mark\n")) == []


def test_shipped_config_with_an_empty_group_file_names_pusher(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    check_config(load_config(shipped(tmp_path, "")))
    warnings = [line for line in capsys.readouterr().out.splitlines() if "not defined" in line]
    assert warnings == ["warning: group 'pusher' (in access.push, access.delete) is not defined in the group "
                        "file: nobody is in it, so it grants nothing"]
