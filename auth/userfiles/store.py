"""The user store: htpasswd + group file, re-read when they change, with a cache.

Why a cache: clients that send Basic on every request would otherwise pay a
bcrypt (250 ms at cost 12) per request. Only successes are cached, keyed by a
digest of user + password + stored hash, so a password change or a file edit
invalidates the entry by construction, and the cache is dropped on reload too.

Why a dummy hash: an unknown user must cost the same as a wrong password, or
response times reveal which user names exist. It is a constant picked from
``hashing.DUMMY_HASHES`` (never computed here): ``reload`` runs under the lock
and is reached from the event loop, so hashing there would stall every request
for one bcrypt each time the file changes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from auth.access import Identity
from auth.userfiles.groups import GroupData, parse_groups
from auth.userfiles.hashing import bcrypt_cost, check_password, dummy_hash
from auth.userfiles.htpasswd import HtpasswdData, parse_htpasswd

log = logging.getLogger(__name__)

RELOAD_INTERVAL = 1.0
CACHE_MAX = 4096
DEFAULT_DUMMY_COST = 5  # Apache htpasswd's default bcrypt cost


def _fingerprint(user: str, hash_: str, groups: frozenset[str]) -> str:
    return hashlib.sha256(f"{user}\0{hash_}\0{','.join(sorted(groups))}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Snapshot:
    """Everything read from the two files at one moment; replaced whole on reload.

    Each user's identity (with its groups) and token fingerprint are worked
    out once here, so a request with Basic or a token costs a dict lookup,
    not a scan of every group and a hash.
    """

    users: HtpasswdData
    groups: GroupData
    dummy_hash: str
    generation: int
    _identities: dict[str, Identity] = field(init=False, repr=False, compare=False)
    _fingerprints: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        memberships: dict[str, set[str]] = {}
        for group, members in self.groups.members.items():
            for member in members:
                memberships.setdefault(member, set()).add(group)
        identities = {u: Identity(u, frozenset(memberships.get(u, ()))) for u in self.users.hashes}
        object.__setattr__(self, "_identities", identities)
        object.__setattr__(self, "_fingerprints", {
            u: _fingerprint(u, h, identities[u].groups) for u, h in self.users.hashes.items()})

    def identity(self, user: str) -> Identity | None:
        return self._identities.get(user)

    def fingerprint(self, user: str) -> str:
        """Changes when the user's hash or groups change: tokens carry it to die with it."""
        found = self._fingerprints.get(user)
        return found if found is not None else _fingerprint(user, "", self.groups.groups_of(user))


def _file_key(path: Path | None) -> tuple[int, int, int] | None:
    if path is None:
        return None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return (0, 0, 0)
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _read(path: Path | None) -> str:
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        log.warning("%s does not exist; nobody can log in until it does", path)
        return ""


def _dummy_hash(data: HtpasswdData) -> str:
    """A constant hash at the bcrypt cost most users have, so a miss costs what a hit does."""
    costs = Counter(c for h in data.hashes.values() if (c := bcrypt_cost(h)) is not None)
    cost = costs.most_common(1)[0][0] if costs else DEFAULT_DUMMY_COST
    return dummy_hash(cost)


class UserStore:
    """Thread-safe: ``verify`` runs in a worker thread, lookups run on the event loop."""

    def __init__(
        self,
        htpasswd: Path,
        groups: Path | None,
        *,
        cache_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._htpasswd = htpasswd
        self._groups = groups
        self._cache_ttl = cache_ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, float] = OrderedDict()
        self._keys: tuple[object, object] | None = None
        self._checked_at = float("-inf")
        self._snapshot: Snapshot | None = None
        self.reload(force=True)

    # -- files -----------------------------------------------------------------
    def reload(self, force: bool = False) -> Snapshot:
        """Re-read the files if they changed (or ``force``); cheap when they did not."""
        with self._lock:
            keys = (_file_key(self._htpasswd), _file_key(self._groups))
            self._checked_at = self._clock()
            if not force and keys == self._keys and self._snapshot is not None:
                return self._snapshot
            users = parse_htpasswd(_read(self._htpasswd), str(self._htpasswd))
            groups = parse_groups(_read(self._groups), str(self._groups or "groups"))
            for warning in users.warnings + groups.warnings:
                log.warning("%s", warning)
            old = self._snapshot
            generation = old.generation + 1 if old else 1
            self._snapshot = Snapshot(users, groups, _dummy_hash(users), generation)
            self._keys = keys
            self._cache.clear()
            if old is not None:
                log.info("re-read %s and %s (generation %d)", self._htpasswd, self._groups, generation)
            return self._snapshot

    def snapshot(self) -> Snapshot:
        """The current data, re-checking the files' mtime at most once a second."""
        snap = self._snapshot
        if snap is None or self._clock() - self._checked_at >= RELOAD_INTERVAL:
            snap = self.reload()
        return snap

    # -- passwords -------------------------------------------------------------
    def _cache_key(self, snap: Snapshot, user: str, password: str) -> bytes:
        hash_ = snap.users.hashes.get(user, "")
        return hashlib.sha256(f"{snap.generation}\0{user}\0{password}\0{hash_}".encode()).digest()

    def cached(self, user: str, password: str) -> Identity | None:
        """The fast path: a recent success for exactly these credentials, else None."""
        if self._cache_ttl <= 0:
            return None
        snap = self.snapshot()
        key = self._cache_key(snap, user, password)
        with self._lock:
            expires = self._cache.get(key)
            if expires is None:
                return None
            if expires < self._clock():
                del self._cache[key]
                return None
        return snap.identity(user)

    def verify(self, user: str, password: str) -> Identity | None:
        """Blocking (bcrypt); run it in a worker thread. Unknown users cost a dummy check."""
        found = self.cached(user, password)
        if found is not None:
            return found
        snap = self.snapshot()
        hash_ = snap.users.hashes.get(user)
        ok = check_password(password, hash_ if hash_ is not None else snap.dummy_hash)
        if not ok or hash_ is None:
            return None
        if self._cache_ttl > 0:
            key = self._cache_key(snap, user, password)
            with self._lock:
                self._cache[key] = self._clock() + self._cache_ttl
                self._cache.move_to_end(key)
                while len(self._cache) > CACHE_MAX:
                    self._cache.popitem(last=False)
        return snap.identity(user)
