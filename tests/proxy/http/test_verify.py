"""Password checks off the loop: shared per credential, and never cancelled by a reload."""

from __future__ import annotations

import asyncio
from pathlib import Path

import bcrypt

from auth.userfiles.store import UserStore
from proxy.http.verify import Verifier


def _store(tmp_path: Path) -> UserStore:
    hashed = bcrypt.hashpw(b"pusherpwd", bcrypt.gensalt(8)).decode()
    (tmp_path / "users.htpasswd").write_text(f"mark:{hashed}\n")
    (tmp_path / "users.groups").write_text("pusher: mark\n")
    return UserStore(tmp_path / "users.htpasswd", tmp_path / "users.groups", cache_ttl=0)


async def test_close_lets_queued_checks_finish(tmp_path: Path) -> None:
    """A reload closes the old pool while logins wait on it: they must still get their answer."""
    verifier = Verifier(_store(tmp_path), workers=1)
    guesses = [asyncio.ensure_future(verifier.verify("mark", f"wrong{i}")) for i in range(4)]
    right = asyncio.ensure_future(verifier.verify("mark", "pusherpwd"))
    await asyncio.sleep(0)  # all five submitted; one runs, four wait in the pool's queue
    verifier.close()
    results = await asyncio.gather(*guesses, right, return_exceptions=True)
    assert results[:4] == [None] * 4
    identity = results[4]
    assert not isinstance(identity, BaseException) and identity is not None and identity.name == "mark"


async def test_identical_checks_share_one_bcrypt(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    store = _store(tmp_path)
    calls = []
    real = store.verify
    monkeypatch.setattr(store, "verify", lambda user, password: calls.append(user) or real(user, password))
    verifier = Verifier(store)
    results = await asyncio.gather(*(verifier.verify("mark", "pusherpwd") for _ in range(10)))
    assert {r.name for r in results if r is not None} == {"mark"}
    assert len(calls) == 1
    verifier.close()
