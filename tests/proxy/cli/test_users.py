"""User/group file editing: pure edits, atomic locked rewrites, and the CLI end to end.

Apache compatibility is proven with Apache's own ``htpasswd -vb`` (apache2-utils),
not by re-checking our hashes with the library that made them.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import bcrypt
import pytest

from auth.userfiles import groups as group_file
from auth.userfiles import hashing
from auth.userfiles import htpasswd as htpasswd_file
from auth.userfiles.atomic import NEW_FILE_MODE, read_lines, rewrite
from proxy.cli.users import add_user_commands

ROOT = Path(__file__).resolve().parents[3]
HTPASSWD_BIN = "/usr/bin/htpasswd"
COST = 4  # fastest bcrypt cost, keeps the suite quick; cost is not what these tests are about

KEPT = ["# operators keep notes here", "", "   ", "this line is not an entry", "  # indented comment"]


# ---------------------------------------------------------------- helpers


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="registry-auth-proxy")
    add_user_commands(p.add_subparsers(dest="cmd", required=True))
    return p


def run(argv: list[str], stdin: str = "") -> tuple[int, str, str]:
    """Parse ``argv`` with a fresh parser and run the handler, capturing the streams."""
    args = parser().parse_args(argv)
    out, err = io.StringIO(), io.StringIO()
    old = sys.stdin, sys.stdout, sys.stderr
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(stdin), out, err
    try:
        code = args.func(args)
    finally:
        sys.stdin, sys.stdout, sys.stderr = old
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path, list[str]]:
    """Paths for an htpasswd and a group file, plus the CLI overrides naming them."""
    ht, gr = tmp_path / "users.htpasswd", tmp_path / "users.groups"
    return ht, gr, ["--htpasswd", str(ht), "--groups", str(gr)]


def apache_verifies(path: Path, user: str, password: str | bytes) -> bool:
    """Ask Apache's htpasswd whether ``password`` is right for ``user`` (exit 0 = yes, 3 = no)."""
    pw = password.encode() if isinstance(password, str) else password
    proc = subprocess.run([HTPASSWD_BIN, "-vb", str(path), user, pw], capture_output=True)
    assert proc.returncode in (0, 3), proc.stderr
    return proc.returncode == 0


def leftovers(directory: Path) -> list[str]:
    """Anything but the data files and the sidecar lock: i.e. stray temp files."""
    return sorted(p.name for p in directory.iterdir() if not p.name.endswith((".htpasswd", ".groups", ".lock")))


# ---------------------------------------------------------------- auth.userfiles.htpasswd


def test_set_user_appends_then_replaces_and_keeps_other_lines() -> None:
    lines = [*KEPT, "bob:$2y$05$bobhash"]
    added = htpasswd_file.set_user(lines, "alice", "$2y$05$one")
    assert added == [*lines, "alice:$2y$05$one"]
    changed = htpasswd_file.set_user(added, "alice", "$2y$05$two")
    assert changed == [*lines, "alice:$2y$05$two"]


def test_set_user_replaces_first_line_and_drops_later_duplicates() -> None:
    """Apache uses the first match, so the new hash must take that place."""
    lines = ["# c", "  alice:old1", "bob:b", "alice:old2", "x"]
    assert htpasswd_file.set_user(lines, "alice", "new") == ["# c", "alice:new", "bob:b", "x"]


def test_remove_and_list_users() -> None:
    lines = [*KEPT, "alice:a", "bob:b", "alice:dup", "#carol:c", "dave:"]
    assert htpasswd_file.list_users(lines) == ["alice", "bob", "dave"]
    assert htpasswd_file.remove_user(lines, "alice") == [*KEPT, "bob:b", "#carol:c", "dave:"]
    assert htpasswd_file.remove_user(lines, "carol") == lines  # a commented-out user is a comment
    assert htpasswd_file.has_user(lines, "bob") and not htpasswd_file.has_user(lines, "carol")


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("", "empty"),
        ("a:b", "':'"),
        ("a b", "whitespace"),
        ("a\tb", "whitespace"),
        ("a\x01b", "control"),
        ("a\x7fb", "control"),
        ("#root", "comment"),
        ("x" * 256, "255 bytes"),
    ],
)
def test_invalid_user_names_are_rejected_clearly(name: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        htpasswd_file.validate_user(name)
    with pytest.raises(ValueError):
        htpasswd_file.set_user([], name, "$2y$05$x")


def test_valid_unusual_names_are_accepted() -> None:
    for name in ["mark", "ci-bot.2", "user@example.org", "jürgen", "x" * 255]:
        assert htpasswd_file.validate_user(name) == name


def test_hash_password_is_apache_style_bcrypt() -> None:
    h = hashing.hash_password("s3cret", cost=COST)
    assert h.startswith("$2y$04$") and len(h) == 60
    assert bcrypt.checkpw(b"s3cret", h.encode())
    assert hashing.hash_password(b"bytes too", cost=COST).startswith("$2y$04$")


@pytest.mark.parametrize("cost", [3, 18])
def test_hash_password_rejects_costs_apache_rejects(cost: int) -> None:
    with pytest.raises(ValueError, match="between 4 and 17"):
        hashing.hash_password("x", cost=cost)


def test_hash_password_rejects_nul_which_apache_would_cut_off() -> None:
    with pytest.raises(ValueError, match="NUL"):
        hashing.hash_password("a\x00b", cost=COST)


# ---------------------------------------------------------------- auth.userfiles.groups


def test_add_member_extends_existing_group_or_appends_and_keeps_lines() -> None:
    lines = [*KEPT, "pusher: mark", "admins:  root   ops"]
    once = group_file.add_member(lines, "pusher", "ci")
    assert once == [*KEPT, "pusher: mark ci", "admins:  root   ops"]
    assert group_file.add_member(once, "pusher", "ci") == once  # already a member: no change
    assert group_file.add_member(once, "readers", "ci")[-1] == "readers: ci"


def test_group_spread_over_lines_is_one_group_like_in_apache() -> None:
    lines = ["pusher: a b", "# x", "pusher: c a", "other: b"]
    assert group_file.list_groups(lines) == {"pusher": ["a", "b", "c"], "other": ["b"]}
    assert group_file.add_member(lines, "pusher", "c") == lines
    assert group_file.remove_member(lines, "pusher", "a") == ["pusher: b", "# x", "pusher: c", "other: b"]


def test_remove_member_keeps_empty_group_line() -> None:
    lines = ["# c", "pusher: mark", "junk"]
    assert group_file.remove_member(lines, "pusher", "mark") == ["# c", "pusher:", "junk"]
    assert group_file.list_groups(["pusher:"]) == {"pusher": []}
    assert group_file.remove_member(lines, "pusher", "nobody") == lines


def test_remove_user_everywhere_touches_only_lines_with_that_user() -> None:
    lines = [*KEPT, "pusher: mark ci", "admins:   root", "readers: mark"]
    assert group_file.remove_user_everywhere(lines, "mark") == [*KEPT, "pusher: ci", "admins:   root", "readers:"]


@pytest.mark.parametrize("group", ["", "a:b", "a b", "#g", "g\n"])
def test_invalid_group_names_are_rejected(group: str) -> None:
    with pytest.raises(ValueError, match="group name"):
        group_file.add_member([], group, "mark")


# ---------------------------------------------------------------- auth.userfiles.atomic


def test_rewrite_creates_new_file_0640_and_leaves_no_temp_files(tmp_path: Path) -> None:
    path = tmp_path / "new.htpasswd"
    rewrite(path, lambda lines: [*lines, "a:b"])
    assert path.read_text() == "a:b\n"
    assert path.stat().st_mode & 0o7777 == NEW_FILE_MODE
    assert leftovers(tmp_path) == []


def test_rewrite_preserves_mode_content_and_undecodable_bytes(tmp_path: Path) -> None:
    path = tmp_path / "x.htpasswd"
    path.write_bytes(b"# notes \xff\xfe not utf-8\nbob:b\n")
    path.chmod(0o600)
    rewrite(path, lambda lines: htpasswd_file.set_user(lines, "alice", "h"))
    assert path.read_bytes() == b"# notes \xff\xfe not utf-8\nbob:b\nalice:h\n"
    assert path.stat().st_mode & 0o7777 == 0o600


def test_rewrite_that_raises_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "x.htpasswd"
    path.write_text("bob:b\n")
    before = path.stat()

    def boom(lines: list[str]) -> list[str]:
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        rewrite(path, boom)
    assert path.read_text() == "bob:b\n" and path.stat().st_ino == before.st_ino
    assert leftovers(tmp_path) == []


def test_unchanged_rewrite_does_not_create_or_touch_the_file(tmp_path: Path) -> None:
    rewrite(tmp_path / "none.groups", lambda lines: lines)
    assert not (tmp_path / "none.groups").exists()


def test_rewrite_follows_symlink_and_keeps_it(tmp_path: Path) -> None:
    real = tmp_path / "real.htpasswd"
    real.write_text("bob:b\n")
    link = tmp_path / "link.htpasswd"
    link.symlink_to(real)
    rewrite(link, lambda lines: [*lines, "a:b"])
    assert link.is_symlink() and real.read_text() == "bob:b\na:b\n"


def test_concurrent_rewrites_from_20_threads_all_land(tmp_path: Path) -> None:
    """Each transform yields the CPU between read and write; without the lock most would be lost."""
    path = tmp_path / "t.htpasswd"

    def add(i: int) -> None:
        def slow(lines: list[str]) -> list[str]:
            time.sleep(0.01)  # widen the read-modify-write window, not a timing assertion
            return htpasswd_file.set_user(lines, f"user{i:02d}", "h")

        rewrite(path, slow)

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(add, range(20)))
    assert sorted(htpasswd_file.list_users(read_lines(path))) == [f"user{i:02d}" for i in range(20)]
    assert leftovers(tmp_path) == []


def test_concurrent_cli_adds_from_20_processes_all_land(files: tuple[Path, Path, list[str]]) -> None:
    ht, _, over = files
    ht.write_text("# shared file\n")
    script = (
        "import argparse, sys\n"
        "from proxy.cli.users import add_user_commands\n"
        "p = argparse.ArgumentParser()\n"
        "add_user_commands(p.add_subparsers(dest='cmd'))\n"
        "a = p.parse_args(sys.argv[1:])\n"
        "sys.exit(a.func(a))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = []
    for i in range(20):
        argv = ["user", "add", f"p{i:02d}", "--cost", str(COST), "--password-stdin", *over]
        proc = subprocess.Popen(
            [sys.executable, "-c", script, *argv], stdin=subprocess.PIPE, env=env, stdout=subprocess.DEVNULL
        )
        procs.append(proc)
    for i, proc in enumerate(procs):
        proc.communicate(f"pw-{i}\n".encode(), timeout=60)
        assert proc.returncode == 0
    assert sorted(htpasswd_file.list_users(read_lines(ht))) == [f"p{i:02d}" for i in range(20)]
    assert read_lines(ht)[0] == "# shared file"
    assert apache_verifies(ht, "p07", "pw-7") and not apache_verifies(ht, "p07", "pw-8")
    assert leftovers(ht.parent) == []


# ---------------------------------------------------------------- CLI end to end


def test_user_add_writes_a_hash_apache_verifies(files: tuple[Path, Path, list[str]]) -> None:
    ht, _, over = files
    code, out, err = run(["user", "add", "mark", "--cost", str(COST), "--password-stdin", *over], "pusherpwd\n")
    assert (code, err) == (0, "") and "added user mark" in out
    assert read_lines(ht)[0].startswith("mark:$2y$04$")
    assert apache_verifies(ht, "mark", "pusherpwd")
    assert not apache_verifies(ht, "mark", "pusherpwd\n") and not apache_verifies(ht, "mark", "wrong")
    assert ht.stat().st_mode & 0o7777 == NEW_FILE_MODE


def test_user_add_default_cost_is_12(files: tuple[Path, Path, list[str]]) -> None:
    ht, _, over = files
    assert run(["user", "add", "slow", "--password-stdin", *over], "pw\n")[0] == 0
    assert read_lines(ht)[0].startswith("slow:$2y$12$")


def test_long_password_behaves_like_apache(files: tuple[Path, Path, list[str]]) -> None:
    """bcrypt uses 72 bytes: Apache truncates silently and so must we (bcrypt 5 would raise)."""
    ht, _, over = files
    pw100 = "".join(chr(ord("a") + i % 26) for i in range(100))
    # Apache's own hash of a 100-byte password: full and 72-byte prefix verify, 71 bytes does not.
    subprocess.run([HTPASSWD_BIN, "-cbB", "-C", str(COST), str(ht), "apache", pw100], check=True)
    assert apache_verifies(ht, "apache", pw100) and apache_verifies(ht, "apache", pw100[:72])
    assert not apache_verifies(ht, "apache", pw100[:71])
    apache_hash = read_lines(ht)[0].split(":", 1)[1].encode()
    assert bcrypt.checkpw(pw100[:72].encode(), apache_hash)  # same secret bytes as ours will use
    # Ours, through the CLI, for the same 100-byte password: Apache accepts exactly the same set.
    assert run(["user", "add", "ours", "--cost", str(COST), "--password-stdin", *over], pw100 + "\n")[0] == 0
    assert apache_verifies(ht, "ours", pw100) and apache_verifies(ht, "ours", pw100[:72])
    assert apache_verifies(ht, "ours", pw100[:72] + "anything after byte 72")
    assert not apache_verifies(ht, "ours", pw100[:71])
    assert apache_verifies(ht, "apache", pw100)  # Apache's line is untouched by our edit


def test_multibyte_password_is_cut_at_72_bytes_like_apache(files: tuple[Path, Path, list[str]]) -> None:
    ht, _, over = files
    pw = "é" * 40  # 80 bytes in UTF-8; 72 bytes = 36 characters
    assert run(["user", "add", "u", "--cost", str(COST), "--password-stdin", *over], pw + "\n")[0] == 0
    assert apache_verifies(ht, "u", pw.encode()) and apache_verifies(ht, "u", ("é" * 36).encode())
    assert not apache_verifies(ht, "u", ("é" * 35).encode())


def test_user_add_refuses_existing_and_passwd_refuses_missing(files: tuple[Path, Path, list[str]]) -> None:
    ht, _, over = files
    assert run(["user", "add", "mark", "--cost", "4", "--password-stdin", *over], "one\n")[0] == 0
    code, out, err = run(["user", "add", "mark", "--cost", "4", "--password-stdin", *over], "two\n")
    assert (code, out) == (1, "") and "already exists" in err
    assert apache_verifies(ht, "mark", "one")
    code, _, err = run(["user", "passwd", "nobody", "--cost", "4", "--password-stdin", *over], "x\n")
    assert code == 1 and "no user 'nobody'" in err
    code, out, _ = run(["user", "passwd", "mark", "--cost", "4", "--password-stdin", *over], "two\n")
    assert code == 0 and "updated password of user mark" in out
    assert apache_verifies(ht, "mark", "two") and not apache_verifies(ht, "mark", "one")


def test_user_passwd_keeps_comments_and_unknown_lines(files: tuple[Path, Path, list[str]]) -> None:
    ht, _, over = files
    subprocess.run([HTPASSWD_BIN, "-cbB", "-C", "4", str(ht), "mark", "old"], check=True)
    ht.write_text("# top comment\n\n" + ht.read_text() + "garbage without colon\nbob:{SHA}x\n")
    assert run(["user", "passwd", "mark", "--cost", "4", "--password-stdin", *over], "new\n")[0] == 0
    lines = read_lines(ht)
    assert lines[:2] == ["# top comment", ""] and lines[3:] == ["garbage without colon", "bob:{SHA}x"]
    assert lines[2].startswith("mark:$2y$04$")
    assert leftovers(ht.parent) == []


def test_prompted_password_must_be_typed_twice(
    files: tuple[Path, Path, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    ht, _, over = files
    answers = iter(["first", "second", "same", "same"])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(answers))
    code, _, err = run(["user", "add", "mark", "--cost", "4", *over])
    assert code == 2 and "do not match" in err and not ht.exists()
    assert run(["user", "add", "mark", "--cost", "4", *over])[0] == 0
    assert apache_verifies(ht, "mark", "same")


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (["user", "add", "bad:name", "--password-stdin"], "pw\n", "must not contain ':'"),
        (["user", "add", "a b", "--password-stdin"], "pw\n", "whitespace"),
        (["user", "add", "mark", "--password-stdin"], "\n", "empty password"),
        (["user", "add", "mark", "--password-stdin", "--cost", "99"], "pw\n", "between 4 and 17"),
        (["group", "add", "pu sher", "mark"], "", "group name"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(
    files: tuple[Path, Path, list[str]], argv: list[str], stdin: str, message: str
) -> None:
    ht, gr, over = files
    code, out, err = run([*argv, *over], stdin)
    assert (code, out) == (2, "") and message in err
    assert not ht.exists() and not gr.exists()


def test_user_remove_also_removes_group_memberships(files: tuple[Path, Path, list[str]]) -> None:
    ht, gr, over = files
    for name in ("mark", "ci"):
        assert run(["user", "add", name, "--cost", "4", "--password-stdin", *over], "pw\n")[0] == 0
    gr.write_text("# groups\npusher: mark ci\nadmins: mark\n")
    code, out, _ = run(["user", "remove", "mark", *over])
    assert code == 0 and "removed user mark" in out
    assert htpasswd_file.list_users(read_lines(ht)) == ["ci"]
    assert read_lines(gr) == ["# groups", "pusher: ci", "admins:"]
    code, _, err = run(["user", "remove", "mark", *over])
    assert code == 1 and "no user 'mark'" in err


def test_user_list_and_group_commands(files: tuple[Path, Path, list[str]]) -> None:
    ht, gr, over = files
    ht.write_text("# c\nmark:x\nreader:y\n")
    assert run(["user", "list", *over]) == (0, "mark\nreader\n", "")
    assert run(["group", "add", "pusher", "mark", *over])[:2] == (0, "added mark to group pusher\n")
    assert run(["group", "add", "pusher", "mark", *over])[:2] == (0, "mark is already in group pusher\n")
    code, _, err = run(["group", "add", "pusher", "ghost", *over])
    assert code == 0 and "warning: ghost has no entry" in err
    assert gr.stat().st_mode & 0o7777 == NEW_FILE_MODE
    assert run(["group", "list", *over]) == (0, "pusher: mark ghost\n", "")
    assert run(["group", "remove", "pusher", "ghost", *over])[0] == 0
    code, _, err = run(["group", "remove", "pusher", "ghost", *over])
    assert code == 1 and "not in group" in err
    assert run(["group", "remove", "pusher", "mark", *over])[0] == 0
    assert run(["group", "list", *over]) == (0, "pusher:\n", "")
    assert read_lines(gr) == ["pusher:"]


def test_group_commands_need_only_the_groups_override(tmp_path: Path) -> None:
    """With --groups alone no config is read, so a missing ./proxy.yml does not matter."""
    gr = tmp_path / "g.groups"
    code, _, err = run(["group", "add", "pusher", "mark", "--groups", str(gr), "--config", "/nonexistent.yml"])
    assert (code, err) == (0, "") and read_lines(gr) == ["pusher: mark"]


def test_missing_config_without_overrides_is_a_usage_error(tmp_path: Path) -> None:
    code, out, err = run(["user", "list", "--config", str(tmp_path / "missing.yml")])
    assert (code, out) == (2, "") and "cannot use config" in err


def test_subcommand_is_required() -> None:
    with pytest.raises(SystemExit) as exc:
        parser().parse_args(["user"])
    assert exc.value.code == 2


def test_every_leaf_has_a_handler_and_the_common_options() -> None:
    leaves: list[list[str]] = [
        ["user", "add", "n"],
        ["user", "passwd", "n"],
        ["user", "remove", "n"],
        ["user", "list"],
        ["group", "add", "g", "u"],
        ["group", "remove", "g", "u"],
        ["group", "list"],
    ]
    for argv in leaves:
        args = parser().parse_args([*argv, "--config", "c.yml", "--htpasswd", "h", "--groups", "g"])
        func: Callable[[argparse.Namespace], int] = args.func
        assert callable(func) and args.config == "c.yml" and args.htpasswd == Path("h")


def test_concurrent_group_adds_from_threads_all_land(files: tuple[Path, Path, list[str]]) -> None:
    _, gr, _ = files
    gr.write_text("# keep me\npusher: mark\n")
    results: list[int] = []
    lock = threading.Lock()

    def add(i: int) -> None:
        args = parser().parse_args(["group", "add", "pusher", f"u{i:02d}", "--groups", str(gr)])
        code = args.func(args)
        with lock:
            results.append(code)

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(add, range(20)))
    assert results == [0] * 20
    assert read_lines(gr)[0] == "# keep me"
    assert sorted(group_file.list_groups(read_lines(gr))["pusher"]) == sorted(
        ["mark", *[f"u{i:02d}" for i in range(20)]]
    )
