"""htpasswd files written by Apache's own ``htpasswd``, read by our parser and UserStore.

The files are made by the real tool in tmp_path, so the formats are Apache's,
not what our library believes Apache writes.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

import pytest

from auth import users as users_module
from auth.groups import parse_groups
from auth.htpasswd import bcrypt_cost, check_password, parse_htpasswd, scheme_of
from auth.users import DEFAULT_DUMMY_COST, UserStore

HTPASSWD_BIN = "/usr/bin/htpasswd"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def apache(path: Path, user: str, password: str, *flags: str) -> str:
    """Add/replace ``user`` with Apache's htpasswd; returns the line it wrote."""
    create = [] if path.exists() else ["-c"]
    subprocess.run([HTPASSWD_BIN, "-b", *flags, *create, str(path), user, password],
                   check=True, capture_output=True, text=True, timeout=60)
    return next(line for line in path.read_text().splitlines() if line.startswith(user + ":"))


def apache_verifies(path: Path, user: str, password: str) -> bool:
    done = subprocess.run([HTPASSWD_BIN, "-vb", str(path), user, password], capture_output=True, timeout=60)
    return done.returncode == 0


def touch_later(path: Path) -> None:
    """Make sure the edit is visible as a new mtime even on coarse-timestamp filesystems."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


FORMATS = [  # (htpasswd flags, prefix of the hash, passlib scheme)
    (("-B", "-C", "4"), "$2y$04$", "bcrypt"),
    (("-B",), "$2y$05$", "bcrypt"),
    (("-m",), "$apr1$", "apr_md5_crypt"),
    (("-s",), "{SHA}", "ldap_sha1"),
    (("-d",), "", "des_crypt"),
    (("-2",), "$5$", "sha256_crypt"),
    (("-5",), "$6$", "sha512_crypt"),
]


@pytest.mark.parametrize(("flags", "prefix", "scheme"), FORMATS, ids=[" ".join(f[0]) for f in FORMATS])
def test_every_apache_format_verifies(tmp_path: Path, flags: tuple[str, ...], prefix: str, scheme: str) -> None:
    path = tmp_path / "users.htpasswd"
    line = apache(path, "alice", "pw-alice1", *flags)
    hash_ = line.split(":", 1)[1]
    assert hash_.startswith(prefix)
    assert scheme_of(hash_) == scheme
    data = parse_htpasswd(path.read_text(), str(path))
    assert data.hashes == {"alice": hash_}
    assert data.warnings == () and data.disabled == frozenset()
    assert check_password("pw-alice1", hash_)
    assert not check_password("wrong-pw", hash_)
    assert not check_password("", hash_)
    store = UserStore(path, None, clock=FakeClock())
    assert store.verify("alice", "pw-alice1") is not None
    assert store.verify("alice", "wrong") is None
    assert store.verify("Alice", "pw-alice1") is None


def test_all_formats_in_one_file(tmp_path: Path) -> None:
    path = tmp_path / "users.htpasswd"
    for n, (flags, _, _) in enumerate(FORMATS):
        apache(path, f"user{n}", f"pass{n}", *flags)
    store = UserStore(path, None, clock=FakeClock())
    for n in range(len(FORMATS)):
        who = store.verify(f"user{n}", f"pass{n}")
        assert who is not None and who.name == f"user{n}"
        assert store.verify(f"user{n}", f"pass{n + 1}") is None


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
    with caplog.at_level(logging.WARNING, logger="registry_auth_proxy.auth"):
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
    with caplog.at_level(logging.WARNING, logger="registry_auth_proxy.auth"):
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


def test_bcrypt_password_over_72_bytes_behaves_like_apache(tmp_path: Path) -> None:
    path = tmp_path / "users.htpasswd"
    password = "pw-long-" + "x" * 92  # 100 bytes
    apache(path, "long", password, "-B", "-C", "4")
    same72 = password[:72] + "DIFFERENT TAIL"
    assert apache_verifies(path, "long", password)
    assert apache_verifies(path, "long", password[:72])
    assert apache_verifies(path, "long", same72)
    assert not apache_verifies(path, "long", password[:71])
    store = UserStore(path, None, cache_ttl=0, clock=FakeClock())
    assert store.verify("long", password) is not None
    assert store.verify("long", password[:72]) is not None
    assert store.verify("long", same72) is not None
    assert store.verify("long", password[:71]) is None
    assert store.verify("long", "y" * 200) is None


def test_multibyte_password_cut_inside_a_character(tmp_path: Path) -> None:
    path = tmp_path / "users.htpasswd"
    password = "p" * 71 + "é" + "tail"  # byte 72 is the first byte of 'é'
    apache(path, "mb", password, "-B", "-C", "4")
    other = "p" * 71 + "è"  # same first byte (0xc3), so the first 72 bytes are equal
    assert apache_verifies(path, "mb", other)
    store = UserStore(path, None, cache_ttl=0, clock=FakeClock())
    assert store.verify("mb", password) is not None
    assert store.verify("mb", other) is not None
    assert not apache_verifies(path, "mb", "p" * 72)
    assert store.verify("mb", "p" * 72) is None


# ------------------------------------------------------------------ UserStore


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    htpasswd = tmp_path / "users.htpasswd"
    groups = tmp_path / "users.groups"
    apache(htpasswd, "mark", "pusherpwd", "-B", "-C", "4")
    apache(htpasswd, "reader", "readerpwd", "-B", "-C", "4")
    groups.write_text("pusher: mark\n")
    return htpasswd, groups


def test_identity_and_groups(files: tuple[Path, Path]) -> None:
    store = UserStore(*files, clock=FakeClock())
    mark = store.verify("mark", "pusherpwd")
    reader = store.verify("reader", "readerpwd")
    assert mark is not None and mark.name == "mark" and mark.groups == frozenset({"pusher"})
    assert reader is not None and reader.groups == frozenset()


def test_file_change_is_noticed_after_a_second_and_drops_the_cache(files: tuple[Path, Path]) -> None:
    htpasswd, groups = files
    clock = FakeClock()
    store = UserStore(htpasswd, groups, clock=clock)
    assert store.verify("mark", "pusherpwd") is not None
    assert store.cached("mark", "pusherpwd") is not None
    generation = store.snapshot().generation
    apache(htpasswd, "mark", "newpwd", "-B", "-C", "4")
    touch_later(htpasswd)
    clock.advance(0.5)  # within the re-check interval: the old data may still be used
    assert store.snapshot().generation == generation
    clock.advance(0.6)
    assert store.snapshot().generation == generation + 1
    assert store.cached("mark", "pusherpwd") is None
    assert store.verify("mark", "pusherpwd") is None
    assert store.verify("mark", "newpwd") is not None
    assert store.verify("reader", "readerpwd") is not None


def test_unchanged_files_are_not_re_read(files: tuple[Path, Path]) -> None:
    clock = FakeClock()
    store = UserStore(*files, clock=clock)
    assert store.verify("mark", "pusherpwd") is not None
    first = store.snapshot()
    clock.advance(5)
    assert store.snapshot() is first
    assert store.cached("mark", "pusherpwd") is not None


def test_group_changes_are_reflected(files: tuple[Path, Path]) -> None:
    htpasswd, groups = files
    clock = FakeClock()
    store = UserStore(htpasswd, groups, clock=clock)
    assert store.verify("reader", "readerpwd").groups == frozenset()  # type: ignore[union-attr]
    groups.write_text("pusher: mark reader\nops: reader\n")
    touch_later(groups)
    clock.advance(1.5)
    reader = store.verify("reader", "readerpwd")
    assert reader is not None and reader.groups == frozenset({"pusher", "ops"})
    groups.write_text("")
    touch_later(groups)
    clock.advance(1.5)
    mark = store.cached("mark", "pusherpwd") or store.verify("mark", "pusherpwd")
    assert mark is not None and mark.groups == frozenset()


def test_deleted_user_is_gone_after_reload(files: tuple[Path, Path]) -> None:
    htpasswd, groups = files
    clock = FakeClock()
    store = UserStore(htpasswd, groups, clock=clock)
    assert store.verify("reader", "readerpwd") is not None
    subprocess.run([HTPASSWD_BIN, "-D", str(htpasswd), "reader"], check=True, capture_output=True, timeout=60)
    touch_later(htpasswd)
    clock.advance(1.1)
    assert store.cached("reader", "readerpwd") is None
    assert store.verify("reader", "readerpwd") is None


def test_cached_only_after_a_successful_verify(files: tuple[Path, Path]) -> None:
    clock = FakeClock()
    store = UserStore(*files, cache_ttl=60, clock=clock)
    assert store.cached("mark", "pusherpwd") is None
    assert store.verify("mark", "wrong") is None
    assert store.cached("mark", "wrong") is None
    assert store.cached("mark", "pusherpwd") is None
    who = store.verify("mark", "pusherpwd")
    assert store.cached("mark", "pusherpwd") == who
    assert store.cached("mark", "pusherpwd ") is None
    assert store.cached("reader", "pusherpwd") is None
    clock.advance(61)
    assert store.cached("mark", "pusherpwd") is None  # expired


def test_cache_disabled(files: tuple[Path, Path]) -> None:
    store = UserStore(*files, cache_ttl=0, clock=FakeClock())
    assert store.verify("mark", "pusherpwd") is not None
    assert store.cached("mark", "pusherpwd") is None


def test_fingerprint_changes_with_password_or_groups(files: tuple[Path, Path]) -> None:
    htpasswd, groups = files
    clock = FakeClock()
    store = UserStore(htpasswd, groups, clock=clock)
    before = store.snapshot().fingerprint("mark")
    reader_before = store.snapshot().fingerprint("reader")
    assert before != reader_before
    clock.advance(5)
    assert store.snapshot().fingerprint("mark") == before  # stable while nothing changes

    groups.write_text("pusher: mark\nops: mark\n")
    touch_later(groups)
    clock.advance(1.5)
    after_groups = store.snapshot().fingerprint("mark")
    assert after_groups != before
    assert store.snapshot().fingerprint("reader") == reader_before

    apache(htpasswd, "mark", "pusherpwd", "-B", "-C", "4")  # same password, new salt: still a new hash
    touch_later(htpasswd)
    clock.advance(1.5)
    after_password = store.snapshot().fingerprint("mark")
    assert after_password not in (before, after_groups)


def test_unknown_user_pays_for_the_dummy_hash(files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    store = UserStore(*files, clock=FakeClock())
    checked: list[str] = []

    def spy(password: str, hash_: str) -> bool:
        checked.append(hash_)
        return check_password(password, hash_)

    monkeypatch.setattr(users_module, "check_password", spy)
    assert store.verify("ghost", "pusherpwd") is None
    assert store.verify("ghost", "dummy password") is None  # even the dummy's own password
    dummy = store.snapshot().dummy_hash
    assert checked == [dummy, dummy]
    assert store.cached("ghost", "dummy password") is None


def test_dummy_hash_cost_is_the_most_common_cost(tmp_path: Path) -> None:
    path = tmp_path / "users.htpasswd"
    apache(path, "a", "pa", "-B", "-C", "4")
    apache(path, "b", "pb", "-B", "-C", "4")
    apache(path, "c", "pc", "-B", "-C", "6")
    apache(path, "d", "pd", "-m")
    dummy = UserStore(path, None, clock=FakeClock()).snapshot().dummy_hash
    assert scheme_of(dummy) == "bcrypt"
    assert dummy.startswith("$2y$04$")
    assert bcrypt_cost(dummy) == 4


def test_dummy_hash_default_cost_without_bcrypt_users(tmp_path: Path) -> None:
    path = tmp_path / "users.htpasswd"
    apache(path, "a", "pa", "-m")
    dummy = UserStore(path, None, clock=FakeClock()).snapshot().dummy_hash
    assert scheme_of(dummy) == "bcrypt"
    assert bcrypt_cost(dummy) == DEFAULT_DUMMY_COST


def test_missing_files_mean_nobody_until_they_appear(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    htpasswd = tmp_path / "users.htpasswd"
    clock = FakeClock()
    with caplog.at_level(logging.WARNING, logger="registry_auth_proxy.auth"):
        store = UserStore(htpasswd, tmp_path / "users.groups", clock=clock)
    assert any("does not exist" in r.getMessage() for r in caplog.records)
    assert store.verify("mark", "pusherpwd") is None
    apache(htpasswd, "mark", "pusherpwd", "-B", "-C", "4")
    clock.advance(1.1)
    who = store.verify("mark", "pusherpwd")
    assert who is not None and who.groups == frozenset()


def test_no_group_file(files: tuple[Path, Path]) -> None:
    store = UserStore(files[0], None, clock=FakeClock())
    who = store.verify("mark", "pusherpwd")
    assert who is not None and who.groups == frozenset()


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
