"""``auth.userfiles.groups``: one line parser for the group-file reader and editor."""

from __future__ import annotations

import pytest

from auth.userfiles.groups import (
    add_member,
    format_line,
    is_member,
    list_groups,
    parse_groups,
    parse_line,
    remove_member,
    remove_user_everywhere,
)


def test_parse_groups() -> None:
    data = parse_groups(
        "# comment\npusher: mark  olga\n\nops:olga\nbad line\nspa ce: x\n: nobody\npusher: zed\nempty:\n",
        "g",
    )
    assert data.members == {
        "pusher": frozenset({"mark", "olga", "zed"}),
        "ops": frozenset({"olga"}),
        "empty": frozenset(),
    }
    assert data.groups_of("olga") == frozenset({"pusher", "ops"})
    assert data.groups_of("nobody") == frozenset()
    assert [w.split(":")[1] for w in data.warnings] == ["5", "6", "7"]


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("pusher: a b", ("pusher", ["a", "b"])),
        ("  pusher :a\tb  ", ("pusher", ["a", "b"])),  # spaces around the group name do not count
        ("empty:", ("empty", [])),
        ("", None),
        ("  # pusher: a", None),
    ],
)
def test_parse_line(line: str, parsed: tuple[str, list[str]] | None) -> None:
    assert parse_line(line) == parsed


@pytest.mark.parametrize("line", ["no colon", ": nobody", "my group: alice", "a\tb:c"])
def test_parse_line_refuses_lines_that_are_no_group(line: str) -> None:
    with pytest.raises(ValueError, match="group: user1 user2"):
        parse_line(line)


def test_group_name_with_inner_space_is_ignored_by_reader_and_editor() -> None:
    """Reader and editor agree: ``my group: alice`` defines no group at all."""
    lines = ["my group: alice", "pusher: bob"]
    data = parse_groups("\n".join(lines), "users.groups")
    assert data.members == {"pusher": frozenset({"bob"})}
    assert len(data.warnings) == 1 and data.warnings[0].startswith("users.groups:1:")
    assert data.groups_of("alice") == frozenset()

    assert list_groups(lines) == {"pusher": ["bob"]}
    assert not is_member(lines, "my", "alice")
    assert not is_member(lines, "group", "alice")
    assert add_member(lines, "my", "alice") == [*lines, "my: alice"]  # a new group, the odd line untouched
    assert add_member(lines, "group", "carol") == [*lines, "group: carol"]
    assert add_member(lines, "pusher", "alice") == ["my group: alice", "pusher: bob alice"]
    assert remove_member(lines, "my", "alice") == lines
    assert remove_user_everywhere(lines, "alice") == lines


def test_format_line() -> None:
    assert format_line("pusher", ["a", "b"]) == "pusher: a b"
    assert format_line("pusher", []) == "pusher:"
