"""``auth.userfiles.store.UserStore``: re-reading, caching, and the constant dummy hash.

The files are made by Apache's own ``htpasswd`` in tmp_path, so the formats are
Apache's, not what our library believes Apache writes.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import bcrypt
import pytest

from auth.userfiles import hashing
from auth.userfiles import store as store_module
from auth.userfiles.hashing import DUMMY_HASHES, bcrypt_cost, check_password, scheme_of
from auth.userfiles.store import DEFAULT_DUMMY_COST, UserStore
from tests.auth.userfiles.apache import FORMATS, HTPASSWD_BIN, FakeClock, apache, touch_later

STORE_LOGGER = "auth.userfiles.store"


def test_all_formats_in_one_file(tmp_path: Path) -> None:
    path = tmp_path / "users.htpasswd"
    for n, (flags, _, _) in enumerate(FORMATS):
        apache(path, f"user{n}", f"pass{n}", *flags)
    store = UserStore(path, None, clock=FakeClock())
    for n in range(len(FORMATS)):
        who = store.verify(f"user{n}", f"pass{n}")
        assert who is not None and who.name == f"user{n}"
        assert store.verify(f"user{n}", f"pass{n + 1}") is None


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

    monkeypatch.setattr(store_module, "check_password", spy)
    assert store.verify("ghost", "pusherpwd") is None
    assert store.verify("ghost", "dummy password") is None  # even the dummy's own password
    dummy = store.snapshot().dummy_hash
    assert checked == [dummy, dummy]
    assert store.cached("ghost", "dummy password") is None


def test_dummy_hash_cost_is_the_highest_cost(tmp_path: Path) -> None:
    """Not the most common: an unknown user must cost what the slowest user's wrong password does."""
    path = tmp_path / "users.htpasswd"
    apache(path, "a", "pa", "-B", "-C", "4")
    apache(path, "b", "pb", "-B", "-C", "4")
    apache(path, "c", "pc", "-B", "-C", "6")
    apache(path, "d", "pd", "-m")
    dummy = UserStore(path, None, clock=FakeClock()).snapshot().dummy_hash
    assert scheme_of(dummy) == "bcrypt"
    assert dummy.startswith("$2y$06$")
    assert bcrypt_cost(dummy) == 6


def test_dummy_hash_default_cost_without_bcrypt_users(tmp_path: Path) -> None:
    path = tmp_path / "users.htpasswd"
    apache(path, "a", "pa", "-m")
    dummy = UserStore(path, None, clock=FakeClock()).snapshot().dummy_hash
    assert scheme_of(dummy) == "bcrypt"
    assert bcrypt_cost(dummy) == DEFAULT_DUMMY_COST


def test_missing_files_mean_nobody_until_they_appear(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    htpasswd = tmp_path / "users.htpasswd"
    clock = FakeClock()
    with caplog.at_level(logging.WARNING, logger=STORE_LOGGER):
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


def test_reload_never_hashes(files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """A reload runs under the store's lock and is reached from the event loop:
    it must not spend a bcrypt (≈250 ms at cost 12) on the dummy hash."""
    htpasswd, groups = files
    clock = FakeClock()
    assert check_password("warm", DUMMY_HASHES[4]) is False  # load passlib's bcrypt backend first

    def no_hashing(*args: object, **kwargs: object) -> object:
        raise AssertionError("reload must not hash")

    monkeypatch.setattr(bcrypt, "hashpw", no_hashing)
    monkeypatch.setattr(bcrypt, "gensalt", no_hashing)
    monkeypatch.setattr(hashing.CONTEXT, "hash", no_hashing)
    store = UserStore(htpasswd, groups, clock=clock)
    assert bcrypt_cost(store.snapshot().dummy_hash) == 4

    with htpasswd.open("a") as f:  # three users at cost 6 now outnumber the two at cost 4
        for name in ("c", "d", "e"):
            f.write(f"{name}:{DUMMY_HASHES[6]}\n")
    touch_later(htpasswd)
    clock.advance(1.5)
    snap = store.snapshot()
    assert set(snap.users.hashes) == {"mark", "reader", "c", "d", "e"}
    assert snap.dummy_hash == DUMMY_HASHES[6]
    snap = store.reload(force=True)
    assert snap.dummy_hash == DUMMY_HASHES[6]

    monkeypatch.undo()
    assert store.verify("c", hashing.DUMMY_PASSWORD) is not None
    assert store.verify("ghost", hashing.DUMMY_PASSWORD) is None


def test_dummy_hash_is_a_constant(tmp_path: Path) -> None:
    path = tmp_path / "users.htpasswd"
    apache(path, "a", "pa", "-B", "-C", "4")
    first = UserStore(path, None, clock=FakeClock()).snapshot().dummy_hash
    second = UserStore(path, None, clock=FakeClock()).snapshot().dummy_hash
    assert first == second == DUMMY_HASHES[4]


def test_dummy_hash_cost_stops_at_17(tmp_path: Path) -> None:
    """A cost-20 hash (another tool's) must not make reload or a miss take minutes."""
    path = tmp_path / "users.htpasswd"
    cost20 = DUMMY_HASHES[4].replace("$04$", "$20$", 1)  # well-formed; never checked here
    path.write_text(f"a:{cost20}\nb:{cost20}\n")
    store = UserStore(path, None, clock=FakeClock())
    assert set(store.snapshot().users.hashes) == {"a", "b"}
    assert store.snapshot().dummy_hash == DUMMY_HASHES[17]
