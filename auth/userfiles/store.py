"""The user store: htpasswd + group file (+ robots file), re-read when they change, with a cache.

Robots (``robot$NAME``, ``auth.userfiles.robots``) skip all of the below: one
SHA-256 per login (no cache, no dummies, no pool), and their expiry is checked
against ``wall_clock`` at every use, so an expired robot and its tokens stop
at once, and a removed one at the next re-read (at most a second later).

Why a cache: clients that send Basic on every request would otherwise pay a
bcrypt (250 ms at cost 12) per request. Only successes are cached, keyed by a
digest of user + password + stored hash, so a password change or a file edit
invalidates the entry by construction, and the cache is dropped on reload too.

Why dummy hashes: every failed check must cost the same, or response times
reveal which user names exist. An unknown user is checked against a dummy at
the cost of the *slowest* hash in the file, and a known user whose own hash is
cheaper also pays dummies that make up the difference after a wrong password
(``hashing.padding_costs``). Measured before: cost-12 user 382 ms, unknown
user 5 ms (the dummy then had the most common cost, 5). The dummies are
constants from ``hashing.DUMMY_HASHES`` (never computed here): ``reload`` runs
under the lock and is reached from the event loop, so hashing there would
stall every request for one bcrypt each time the file changes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from auth.access import Identity
from auth.userfiles.groups import GroupData, parse_groups
from auth.userfiles.hashing import (
    MAX_COST,
    MIN_COST,
    bcrypt_cost,
    check_password,
    dummy_hash,
    equivalent_cost,
    padding_costs,
)
from auth.userfiles.htpasswd import HtpasswdData, parse_htpasswd
from auth.userfiles.robots import ROBOT_PREFIX, RobotData, parse_robots, robot_name

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
    dummy_hash: str  # what an unknown user is checked against: the cost of the slowest hash ("" : none)
    generation: int
    robots: RobotData = field(default_factory=RobotData)  # robot$NAME accounts (auth.userfiles.robots)
    wall_clock: Callable[[], float] = field(default=time.time, repr=False, compare=False)  # robot expiry
    _identities: dict[str, Identity] = field(init=False, repr=False, compare=False)
    _fingerprints: dict[str, str] = field(init=False, repr=False, compare=False)
    _padding: dict[str, tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        memberships: dict[str, set[str]] = {}
        for group, members in self.groups.members.items():
            for member in members:
                memberships.setdefault(member, set()).add(group)
        # robot$NAME is the robots file's alone: an htpasswd line of that name is ignored (store warns)
        identities = {u: Identity(u, frozenset(memberships.get(u, ()))) for u in self.users.hashes
                      if not u.startswith(ROBOT_PREFIX)}
        identities.update({r.username: Identity(r.username, r.groups, r.scopes)
                           for r in self.robots.robots.values()})
        object.__setattr__(self, "_identities", identities)
        object.__setattr__(self, "_fingerprints", {
            **{u: _fingerprint(u, h, identities[u].groups) for u, h in self.users.hashes.items()
               if u in identities},
            **{r.username: r.fingerprint() for r in self.robots.robots.values()}})
        target = bcrypt_cost(self.dummy_hash)
        padding: dict[str, tuple[str, ...]] = {}
        if target is not None:
            for user, hash_ in self.users.hashes.items():
                costs = padding_costs(equivalent_cost(hash_), target)
                if costs:
                    padding[user] = tuple(dummy_hash(c) for c in costs)
        object.__setattr__(self, "_padding", padding)

    def identity(self, user: str) -> Identity | None:
        """The user's identity now; a robot past its expiry has none (checked at every use)."""
        name = robot_name(user)
        if name is not None:
            robot = self.robots.robots.get(name)
            if robot is None or robot.expired(self.wall_clock()):
                return None
        return self._identities.get(user)

    def robot_login(self, user: str, secret: str) -> Identity | None:
        """A robot's Basic check: one SHA-256, microseconds, no cache and no pool needed."""
        robot = self.robots.login(user, secret, self.wall_clock())
        return None if robot is None else self.identity(user)

    def padding(self, user: str) -> tuple[str, ...]:
        """Dummy hashes to check after ``user`` failed, so the failure costs what the slowest hash does.

        Unknown (or disabled) users get the one dummy; users at the slowest
        cost get none; cheaper users get dummies that make up the difference.
        """
        if user not in self.users.hashes:
            return (self.dummy_hash,) if self.dummy_hash else ()
        return self._padding.get(user, ())

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


def _read_robots(path: Path | None) -> str:
    """The robots file; missing means no robots yet (it appears with the first ``robot add``)."""
    if path is None:
        return ""
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""


def _dummy_hash(data: HtpasswdData) -> str:
    """A constant hash as slow as the slowest hash in the file, so a miss costs what the worst hit does.

    Files with no bcrypt or sha-crypt hash (only fast apr1/{SHA}/DES, or
    nobody) get Apache's default cost, as before. Above ``MAX_COST`` the
    dummy stops at 17: a cost-20 check would take minutes.
    """
    costs = [c for h in data.hashes.values() if (c := equivalent_cost(h)) >= MIN_COST]
    return dummy_hash(min(max(costs), MAX_COST) if costs else DEFAULT_DUMMY_COST)


class UserStore:
    """Thread-safe: ``verify`` runs in a worker thread, lookups run on the event loop."""

    def __init__(
        self,
        htpasswd: Path,
        groups: Path | None,
        *,
        cache_ttl: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        robots: Path | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._htpasswd = htpasswd
        self._groups = groups
        self._robots = robots
        self._wall_clock = wall_clock  # robot expiry is a date: the wall clock, not the monotonic one
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
            keys = (_file_key(self._htpasswd), _file_key(self._groups), _file_key(self._robots))
            self._checked_at = self._clock()
            if not force and keys == self._keys and self._snapshot is not None:
                return self._snapshot
            users = parse_htpasswd(_read(self._htpasswd), str(self._htpasswd))
            groups = parse_groups(_read(self._groups), str(self._groups or "groups"))
            robots = parse_robots(_read_robots(self._robots), str(self._robots))
            shadowed = tuple(f"{self._htpasswd}: user {u!r} ignored: robot$ names are robot accounts "
                             "(robot add)" for u in users.hashes if u.startswith(ROBOT_PREFIX))
            for warning in users.warnings + groups.warnings + robots.warnings + shadowed:
                log.warning("%s", warning)
            old = self._snapshot
            generation = old.generation + 1 if old else 1
            self._snapshot = Snapshot(users, groups, _dummy_hash(users), generation, robots, self._wall_clock)
            self._keys = keys
            self._cache.clear()
            if old is not None:
                log.info("re-read %s and %s (generation %d)", self._htpasswd, self._groups, generation)
            return self._snapshot

    def verify_robot(self, user: str, secret: str) -> Identity | None:
        """Non-blocking (one SHA-256): safe on the event loop, so robots skip the password pool."""
        return self.snapshot().robot_login(user, secret)

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
        """Blocking (bcrypt); run it in a worker thread.

        Every failure costs at least the slowest hash in the file: unknown
        users pay a dummy at that cost, cheaper hashes pay dummies on top.
        A dummy's result is ignored (its password grants nothing).
        """
        if user.startswith(ROBOT_PREFIX):
            return self.verify_robot(user, password)
        found = self.cached(user, password)
        if found is not None:
            return found
        snap = self.snapshot()
        hash_ = snap.users.hashes.get(user)
        if hash_ is None or not check_password(password, hash_):
            for dummy in snap.padding(user):
                check_password(password, dummy)
            return None
        if self._cache_ttl > 0:
            key = self._cache_key(snap, user, password)
            with self._lock:
                self._cache[key] = self._clock() + self._cache_ttl
                self._cache.move_to_end(key)
                while len(self._cache) > CACHE_MAX:
                    self._cache.popitem(last=False)
        return snap.identity(user)
