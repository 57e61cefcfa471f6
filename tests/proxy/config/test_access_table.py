"""``access_table``: the effective policy check-config prints, networks included."""

from __future__ import annotations

import ipaddress
from pathlib import Path

from auth.access import Access, RepositoryRule, Rule
from proxy.config import parse_config
from proxy.config.access import access_table

LAN = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.168.0.0/16"))
PUSHERS_ON_LAN = Rule(groups=frozenset({"pusher"}), networks=LAN)


def cells(line: str) -> list[str]:
    """A table row split on the two-space gutter (a cell like ``[a] from NET`` has single spaces)."""
    return [c.strip() for c in line.strip().split("  ") if c.strip()]


def test_default_cells_show_their_networks() -> None:
    lines = access_table(Access(push=PUSHERS_ON_LAN))
    assert cells(lines[1]) == ["(default)", "anyone", "[pusher] from 10.0.0.0/8,192.168.0.0/16", "[pusher]"]


def test_inherited_cell_keeps_its_networks_and_marks_the_who() -> None:
    access = Access(push=PUSHERS_ON_LAN, repositories=(RepositoryRule("vault/**", pull=Rule(users=True)),))
    row = cells(access_table(access)[2])
    assert row == ["vault/**", "users", "[pusher]* from 10.0.0.0/8,192.168.0.0/16", "[pusher]*"]


def test_repository_cell_with_its_own_networks() -> None:
    access = Access(repositories=(RepositoryRule("ci/**", delete=Rule(users=True, networks=LAN[:1])),))
    assert cells(access_table(access)[2]) == ["ci/**", "anyone*", "[pusher]*", "users from 10.0.0.0/8"]


def test_columns_stay_aligned_when_a_cell_is_long() -> None:
    access = Access(push=PUSHERS_ON_LAN, repositories=(RepositoryRule("team-a/**", push=Rule.of_groups(["a"])),))
    rows = access_table(access)[:3]
    starts = {line.index(word) for line, word in zip(rows, ["push", "[pusher] from", "[a]"], strict=True)}
    assert len(starts) == 1  # the push column starts at the same offset on every row


def test_networks_get_a_legend_and_the_catalog_shows_its_own() -> None:
    lines = access_table(Access(catalog=Rule(users=True, networks=LAN[1:])))
    assert "  catalog (/v2/_catalog): users from 192.168.0.0/16" in lines
    assert any(line.strip().startswith("from NETS:") for line in lines)
    assert not any("from NETS" in line for line in access_table(Access()))


def test_table_from_yaml_long_form(tmp_path: Path) -> None:
    data = {"access": {"push": {"groups": ["pusher"], "from": ["10.0.0.0/8", "192.168.0.0/16"]},
                       "repositories": [{"match": "ops/**", "pull": {"who": "users", "from": "10.1.0.0/16"}}]}}
    lines = access_table(parse_config(data, tmp_path / "proxy.yml").access)
    assert cells(lines[2]) == ["ops/**", "users from 10.1.0.0/16", "[pusher]* from 10.0.0.0/8,192.168.0.0/16",
                               "[pusher]*"]
