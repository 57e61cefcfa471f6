"""Password checks off the event loop, one bcrypt per distinct credential at a time.

bcrypt at cost 12 takes ~250 ms of CPU. Running it on the loop would stall
every transfer (nginx does exactly that). So checks go to a thread pool
(bcrypt releases the GIL), and concurrent requests with the same credentials
share one check instead of each paying for it.
"""

from __future__ import annotations

import asyncio
import hashlib
from concurrent.futures import ThreadPoolExecutor

from auth.access import Identity
from auth.userfiles.robots import ROBOT_PREFIX
from auth.userfiles.store import UserStore

__all__ = ["Verifier", "credential_key"]


def credential_key(user: str, password: str) -> bytes:
    """What identical credentials are recognised by while their check runs (never the password itself)."""
    return hashlib.sha256(f"{user}\0{password}".encode()).digest()


class Verifier:
    def __init__(self, store: UserStore, workers: int = 4) -> None:
        self.store = store
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="verify")
        self._inflight: dict[bytes, asyncio.Future[Identity | None]] = {}

    def known(self, user: str, password: str) -> Identity | None:
        """The identity when these exact credentials were verified within ``auth.cache_ttl`` (no bcrypt)."""
        if user.startswith(ROBOT_PREFIX):
            return None  # robot checks are cheap but still guesses: they go through the throttle
        return self.store.cached(user, password)

    async def verify(self, user: str, password: str) -> Identity | None:
        if user.startswith(ROBOT_PREFIX):  # one SHA-256: checked right here, no thread hop
            return self.store.verify_robot(user, password)
        found = self.store.cached(user, password)
        if found is not None:
            return found
        key = credential_key(user, password)
        pending = self._inflight.get(key)
        if pending is None:
            loop = asyncio.get_running_loop()
            pending = asyncio.ensure_future(loop.run_in_executor(self._pool, self.store.verify, user, password))
            self._inflight[key] = pending
            pending.add_done_callback(lambda _f: self._inflight.pop(key, None))
        return await asyncio.shield(pending)

    def close(self) -> None:
        """Stop taking new checks; checks already queued or running still finish and answer.

        A reload replaces the pool while requests wait on it: cancelling
        their queued checks would fail logins that did nothing wrong.
        """
        self._pool.shutdown(wait=False, cancel_futures=False)
