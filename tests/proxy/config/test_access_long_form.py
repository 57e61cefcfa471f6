"""Access rules in the long form: ``{who: ..., from: [CIDR, ...]}`` or ``{groups: [...], from: [...]}``.

The short forms (``anyone``, ``users``, ``[groups]``) keep working and mean
"from anywhere"; every mistake in the long form is one line naming the
dotted key (down to ``access.repositories[0].pull.from``).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

import pytest

from auth.access import Access, Action, Rule
from proxy.config import ConfigError, load_config, parse_config


def nets(*cidrs: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(c) for c in cidrs)


def access(tmp_path: Path, section: dict[str, Any]) -> Access:
    return parse_config({"access": section}, tmp_path / "proxy.yml").access


@pytest.mark.parametrize(
    ("value", "rule"),
    [
        ("anyone", Rule(anyone=True)),
        ("users", Rule(users=True)),
        (["pusher", "ops"], Rule.of_groups(["pusher", "ops"])),
        ([], Rule()),
        ({"who": "anyone"}, Rule(anyone=True)),  # long form without from: from anywhere
        ({"who": "users", "from": ["10.0.0.0/8"]}, Rule(users=True, networks=nets("10.0.0.0/8"))),
        ({"who": ["pusher"], "from": ["10.0.0.0/8", "2001:db8::/32"]},
         Rule(groups=frozenset({"pusher"}), networks=nets("10.0.0.0/8", "2001:db8::/32"))),
        ({"groups": ["pusher"], "from": ["192.168.0.0/16"]},
         Rule(groups=frozenset({"pusher"}), networks=nets("192.168.0.0/16"))),
        ({"groups": ["a", "b"]}, Rule.of_groups(["a", "b"])),
        ({"who": "anyone", "from": "10.0.0.0/8"}, Rule(anyone=True, networks=nets("10.0.0.0/8"))),  # one string
        ({"who": "anyone", "from": ["192.0.2.7"]}, Rule(anyone=True, networks=nets("192.0.2.7/32"))),  # one address
        ({"who": "anyone", "from": ["::1"]}, Rule(anyone=True, networks=nets("::1/128"))),
    ],
)
def test_every_form_is_read(tmp_path: Path, value: object, rule: Rule) -> None:
    assert access(tmp_path, {"push": value}).push == rule


def test_long_form_works_for_every_action_the_catalog_and_repository_rules(tmp_path: Path) -> None:
    long = {"who": "users", "from": ["10.0.0.0/8"]}
    expected = Rule(users=True, networks=nets("10.0.0.0/8"))
    result = access(tmp_path, {"pull": long, "push": long, "delete": long, "catalog": long,
                               "repositories": [{"match": "team/**", "pull": long, "push": ["team"]}]})
    assert result.pull == result.push == result.delete == result.catalog == expected
    assert result.rule(Action.PULL, "team/app") == expected
    assert result.rule(Action.PUSH, "team/app") == Rule.of_groups(["team"])


def test_the_long_form_from_a_yaml_file(tmp_path: Path) -> None:
    path = tmp_path / "proxy.yml"
    path.write_text(
        "access:\n"
        "  pull: {who: anyone, from: [10.0.0.0/8]}\n"
        "  push:\n"
        "    groups: [pusher]\n"
        "    from:\n"
        "      - 10.0.0.0/8\n"
        '      - "2001:db8::/32"\n'
        "  repositories:\n"
        "    - match: internal/**\n"
        "      pull: {who: users, from: 192.168.1.0/24}\n"
    )
    result = load_config(path).access
    assert result.pull == Rule(anyone=True, networks=nets("10.0.0.0/8"))
    assert result.push == Rule(groups=frozenset({"pusher"}), networks=nets("10.0.0.0/8", "2001:db8::/32"))
    assert result.rule(Action.PULL, "internal") == Rule(users=True, networks=nets("192.168.1.0/24"))
    assert result.allowed(None, Action.PULL, "public/x", "10.1.1.1")
    assert not result.allowed(None, Action.PULL, "public/x", "192.0.2.1")


# (access section, dotted key named in the message, text of the found value)
MISTAKES: list[tuple[dict[str, Any], str, str]] = [
    ({"push": {"from": ["10.0.0.0/8"]}}, "access.push", "{'from': ['10.0.0.0/8']}"),  # who is missing
    ({"push": {}}, "access.push", "{}"),
    ({"push": {"who": "users", "groups": ["a"]}}, "access.push", "'groups': ['a']"),  # both
    ({"push": {"who": "everyone"}}, "access.push.who", "'everyone'"),
    ({"push": {"who": "pusher"}}, "access.push.who", "'pusher'"),
    ({"push": {"who": {"who": "users"}}}, "access.push.who", "{'who': 'users'}"),
    ({"push": {"who": [""]}}, "access.push.who", "['']"),
    ({"push": {"who": ["a:b"]}}, "access.push.who", "['a:b']"),
    ({"push": {"groups": "pusher"}}, "access.push.groups", "'pusher'"),
    ({"push": {"groups": "anyone"}}, "access.push.groups", "'anyone'"),
    ({"push": {"groups": [1]}}, "access.push.groups", "[1]"),
    ({"push": {"who": "users", "from": []}}, "access.push.from", "[]"),
    ({"push": {"who": "users", "from": None}}, "access.push.from", "None"),
    ({"push": {"who": "users", "from": {"net": "10.0.0.0/8"}}}, "access.push.from", "{'net': '10.0.0.0/8'}"),
    ({"push": {"who": "users", "from": ["10.0.0.0/33"]}}, "access.push.from", "'10.0.0.0/33'"),
    ({"push": {"who": "users", "from": ["10.0.0.0/8", "garbage"]}}, "access.push.from", "'garbage'"),
    ({"push": {"who": "users", "from": [10]}}, "access.push.from", "10"),
    ({"push": {"who": "users", "from": [True]}}, "access.push.from", "True"),
    ({"push": {"who": "users", "from": ["10.0.0.0/8 "]}}, "access.push.from", "'10.0.0.0/8 '"),
    ({"push": {"who": "users", "from": ["2001:db8::/129"]}}, "access.push.from", "'2001:db8::/129'"),
    ({"push": {"who": "users", "where": ["10.0.0.0/8"]}}, "access.push.where", "unknown key"),
    ({"catalog": {"who": "users", "from": ["x"]}}, "access.catalog.from", "'x'"),
    ({"pull": {"groups": ["a"], "from": "nope"}}, "access.pull.from", "'nope'"),
    ({"repositories": [{"match": "a/**", "pull": {"who": "anyone", "from": ["x"]}}]},
     "access.repositories[0].pull.from", "'x'"),
    ({"repositories": [{"match": "a/**", "push": ["a"]}, {"match": "b/**", "delete": {"groups": "b"}}]},
     "access.repositories[1].delete.groups", "'b'"),
    ({"repositories": [{"match": "a/**", "pull": {"who": "nobody"}}]}, "access.repositories[0].pull.who", "'nobody'"),
    ({"repositories": [{"match": "a/**", "pull": {"from": ["10.0.0.0/8"]}}]}, "access.repositories[0].pull",
     "'from'"),
]


@pytest.mark.parametrize(("section", "key", "found"), MISTAKES, ids=[k + ":" + f for _, k, f in MISTAKES])
def test_a_long_form_mistake_names_the_dotted_key(tmp_path: Path, section: dict[str, Any], key: str,
                                                   found: str) -> None:
    path = tmp_path / "proxy.yml"
    with pytest.raises(ConfigError) as info:
        parse_config({"access": section}, path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}: expected "), message
    assert found in message, message
    assert "\n" not in message


def test_the_short_form_mistake_mentions_the_long_form(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        access(tmp_path, {"push": "pusher"})
    assert "from: [NETWORK, ...]" in str(info.value)
