"""``auth.userfiles.htpasswd``: one line parser for the reader and the editor.

Files are written by Apache's own ``htpasswd`` where the tool can write them;
lines Apache's tool would not write (odd spacing, junk) are added by hand.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from auth.userfiles.atomic import read_lines, rewrite
from auth.userfiles.hashing import DUMMY_HASHES, check_password
from auth.userfiles.htpasswd import (
    has_user,
    list_users,
    parse_htpasswd,
    parse_line,
    remove_user,
    set_user,
)
from auth.userfiles.store import UserStore
from tests.auth.userfiles.apache import (
    CORRUPT_USERS,
    FIXTURE,
    FIXTURE_USERS,
    LONG_BCRYPT_USERS,
    UNSUPPORTED_USERS,
    FakeClock,
    apache,
    apache_verifies,
)

STORE_LOGGER = "auth.userfiles.store"


def test_plaintext_line_disables_that_user_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "users.htpasswd"
    apache(path, "good", "pw-good", "-B", "-C", "4")
    plain_line = apache(path, "plain", "pw-plain", "-p")
    assert plain_line == "plain:pw-plain"  # Apache really wrote it unhashed
    assert not apache_verifies(path, "plain", "pw-plain")  # and Apache on Linux refuses it
    data = parse_htpasswd(path.read_text(), str(path))
    assert "plain" in data.disabled and "plain" not in data.hashes
    assert any("'plain'" in w and f"{path}:2" in w for w in data.warnings), data.warnings
    with caplog.at_level(logging.WARNING, logger=STORE_LOGGER):
        store = UserStore(path, None, clock=FakeClock())
    assert any("'plain'" in r.getMessage() for r in caplog.records)
    assert store.verify("plain", "pw-plain") is None
    assert store.verify("good", "pw-good") is not None
    assert store.snapshot().identity("plain") is None


def test_corrupt_lines_warn_and_the_rest_keep_working(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "users.htpasswd"
    apache(path, "first", "pw-first", "-B", "-C", "4")
    with path.open("a") as f:
        f.write("broken:$2y$05$short\n")
        f.write("this line has no colon\n")
        f.write(":nouser\n")
        f.write("# a comment: with colon\n\n")
    # Apache's tool refuses to edit a file with a colon-less line, so the last user is appended by hand
    last_line = apache(tmp_path / "other", "last", "pw-last", "-m")
    with path.open("a") as f:
        f.write(last_line + "\n")
    data = parse_htpasswd(path.read_text(), "users.htpasswd")
    assert set(data.hashes) == {"first", "last"}
    assert data.disabled == frozenset({"broken"})
    assert len(data.warnings) == 3
    assert data.warnings[0].startswith("users.htpasswd:2:") and "'broken'" in data.warnings[0]
    assert data.warnings[1].startswith("users.htpasswd:3:")
    assert data.warnings[2].startswith("users.htpasswd:4:")
    with caplog.at_level(logging.WARNING, logger=STORE_LOGGER):
        store = UserStore(path, None, clock=FakeClock())
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 3
    assert store.verify("first", "pw-first") is not None
    assert store.verify("last", "pw-last") is not None
    assert store.verify("broken", "anything") is None
    assert not check_password("anything", "$2y$05$short")  # a bad hash is a wrong password, not a crash


def test_first_line_of_a_user_wins_like_apache(tmp_path: Path) -> None:
    one = tmp_path / "one"
    two = tmp_path / "two"
    first = apache(one, "dup", "pw-first", "-B", "-C", "4")
    second = apache(two, "dup", "pw-second", "-B", "-C", "4")
    path = tmp_path / "users.htpasswd"
    path.write_text(f"{first}\n{second}\n")
    store = UserStore(path, None, clock=FakeClock())
    assert store.verify("dup", "pw-first") is not None
    assert store.verify("dup", "pw-second") is None


def test_the_apache_fixture_reads_as_documented() -> None:
    data = parse_htpasswd(FIXTURE.read_text(), "apache.htpasswd")
    assert set(data.hashes) == {u for u, _, _ in FIXTURE_USERS + LONG_BCRYPT_USERS}
    assert data.disabled == {u for u, _ in UNSUPPORTED_USERS} | set(CORRUPT_USERS)
    assert len(data.warnings) == len(UNSUPPORTED_USERS) + len(CORRUPT_USERS) + 1  # + the colon-less line


# ------------------------------------------------------------------ the one line parser


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("alice:HASH", ("alice", "HASH")),
        ("  alice:HASH  ", ("alice", "HASH")),  # the line is stripped, as Apache's config reader does
        ("mark :HASH", ("mark ", "HASH")),  # the user is verbatim: Apache compares "mark " with strcmp
        ("a b:HASH", ("a b", "HASH")),
        ("alice: HASH", ("alice", " HASH")),  # the hash too (and " HASH" is no usable hash)
        ("alice:a:b", ("alice", "a:b")),  # only the first ':' separates
        ("dave:", ("dave", "")),
        ("", None),
        ("   ", None),
        ("# alice:HASH", None),
        ("  #alice:HASH", None),
    ],
)
def test_parse_line(line: str, parsed: tuple[str, str] | None) -> None:
    assert parse_line(line) == parsed


@pytest.mark.parametrize("line", ["no colon", ":nouser", "  :nouser"])
def test_parse_line_refuses_lines_that_are_no_entry(line: str) -> None:
    with pytest.raises(ValueError, match="user:hash"):
        parse_line(line)


def test_reader_warns_about_names_clients_cannot_type(tmp_path: Path) -> None:
    good = apache(tmp_path / "x", "x", "pw", "-B", "-C", "4").split(":", 1)[1]
    data = parse_htpasswd(f"tab\tname:{good}\nbell\x07:{good}\nplain:{good}\n", "h")
    assert set(data.hashes) == {"tab\tname", "bell\x07", "plain"}  # distinct users, as in Apache
    assert [w.split(":")[1] for w in data.warnings] == ["1", "2"]
    assert all("cannot type it reliably" in w for w in data.warnings)


# ------------------------------------------------------------------ reader and editor agree


def test_space_before_colon_is_another_user_for_reader_and_editor(tmp_path: Path) -> None:
    """``mark :HASH`` is user ``"mark "`` to Apache, to the proxy, and to the editor."""
    path = tmp_path / "users.htpasswd"
    old_hash = DUMMY_HASHES[4]  # its password is the dummy password
    new_hash = apache(tmp_path / "new", "mark", "pw-new", "-B", "-C", "4").split(":", 1)[1]
    path.write_text(f"# notes\nmark :{old_hash}\n")

    data = parse_htpasswd(path.read_text(), "users.htpasswd")
    assert set(data.hashes) == {"mark "}
    assert any("'mark '" in w and "users.htpasswd:2:" in w for w in data.warnings), data.warnings

    lines = read_lines(path)
    assert not has_user(lines, "mark")
    assert has_user(lines, "mark ")
    assert list_users(lines) == ["mark "]
    assert remove_user(lines, "mark") == lines
    assert set_user(lines, "mark", new_hash) == [*lines, f"mark:{new_hash}"]

    rewrite(path, lambda current: set_user(current, "mark", new_hash))
    assert read_lines(path) == ["# notes", f"mark :{old_hash}", f"mark:{new_hash}"]
    store = UserStore(path, None, clock=FakeClock())
    assert store.verify("mark", "pw-new") is not None
    assert store.verify("mark", "dummy password") is None
    assert store.verify("mark ", "dummy password") is not None  # still there, as in Apache

    lines = read_lines(path)
    assert list_users(lines) == ["mark ", "mark"]
    assert remove_user(lines, "mark") == ["# notes", f"mark :{old_hash}"]


def test_editor_skips_lines_the_reader_ignores() -> None:
    lines = ["no colon here", ":nouser", "# alice:x", "  alice:first", "alice:second"]
    assert list_users(lines) == ["alice"]
    assert not has_user(lines, "no colon here")
    assert set_user(lines, "alice", "new") == ["no colon here", ":nouser", "# alice:x", "alice:new"]
    assert remove_user(lines, "alice") == lines[:3]
    data = parse_htpasswd("\n".join(lines), "h")
    assert [w.split(":")[1] for w in data.warnings[:2]] == ["1", "2"]
