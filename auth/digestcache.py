"""Content addressed by digest, kept in memory: what may be kept, for whom it is the same, when it goes.

A manifest or blob fetched by digest is the same bytes forever, so a
``GET``/``HEAD`` of one can be answered without the registry: this module
is the policy and the bookkeeping of that (pure, no I/O, an injectable
clock); ``proxy.http.cache`` is the transport side. The rules, and why:

- Keyed by ``(repository, kind, digest)``. The registry answers per
  repository (a blob pushed to ``a`` is unknown in ``b`` until mounted), and
  the gate authorizes per repository, so bytes kept for one are never an
  answer for another.
- Kept only when the body hashes to the digest it was asked by
  (:class:`Fill`): a backend that lies, or a body cut short, cannot poison
  the cache. Nothing is ever kept by tag: tags move.
- Bounded: ``max_item`` per body, ``max_bytes`` for bodies *and* headers
  plus a fixed overhead per entry, least recently used dropped first.
- A manifest is served from memory only to a client whose ``Accept`` names
  its media type exactly (:func:`accepts`). The registry answers an OCI
  manifest asked by digest with 404 to a client that does not list the OCI
  type (even ``*/*``), so anything less exact is forwarded: if in doubt, ask.
- Gone on ``DELETE`` through the proxy (:meth:`DigestCache.evict`), on
  ``gc`` (:meth:`DigestCache.clear`, through the admin listener), and after
  ``ttl`` seconds for what changed behind the proxy's back. Every eviction
  bumps a generation; a fill that began before it is not kept, so a ``GET``
  racing a ``DELETE`` cannot bring the deleted bytes back.
- ``0`` for ``max_bytes``, ``max_item`` or ``ttl`` turns it off (nothing can
  live zero seconds or fit in zero bytes).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

__all__ = ["KINDS", "OVERHEAD", "CacheCounters", "DigestCache", "Entry", "Fill", "Key", "accepts", "cache_digest",
           "media_type"]

KINDS = frozenset({"manifest", "blob"})
OVERHEAD = 256  # per entry: key tuple, dict slot, the Entry itself; so a million empty bodies still count
_DIGEST = re.compile(r"(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})")
REASONS = ("lru", "ttl", "delete", "clear")

Key = tuple[str, str, str]  # (repository, kind, digest)
Headers = tuple[tuple[str, str], ...]


@dataclass
class CacheCounters:
    """Plain counters the cache keeps and the metrics read at scrape time (they outlive a new cache)."""

    hits: int = 0
    misses: int = 0  # requests by digest the cache could have answered but did not
    stored: int = 0
    rejected: int = 0  # bodies that did not hash to their digest (or were cut short): never kept
    evicted: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REASONS, 0))
    bytes: int = 0  # held now (bodies, headers, overhead)
    entries: int = 0


@dataclass(frozen=True, slots=True)
class Entry:
    headers: Headers  # as the proxy sends them, minus Date and Content-Length (made fresh for each answer)
    body: bytes
    media_type: str  # of the Content-Type, without parameters, lowercase
    expires: float
    weight: int


def cache_digest(reference: str) -> str | None:
    """The digest when ``reference`` is one this cache can verify (sha256, sha512); else None (a tag...)."""
    return reference if _DIGEST.fullmatch(reference) else None


def media_type(content_type: str) -> str:
    return content_type.partition(";")[0].strip().lower()


def accepts(accept: Iterable[str], media: str) -> bool:
    """True when one of the ``Accept`` values names ``media`` exactly (parameters such as ``q`` ignored).

    As distribution judges it: ``*/*`` does not make an OCI manifest
    acceptable there, so it does not here either. ``q=0`` ("not this one")
    is read as a refusal, to stay on the safe side.
    """
    for value in accept:
        for item in value.split(","):
            name, _, params = item.partition(";")
            if name.strip().lower() == media:
                return not any(p.strip().replace(" ", "") in ("q=0", "q=0.0", "q=0.00", "q=0.000")
                               for p in params.split(";"))
    return False


def _weight(key: Key, headers: Headers, length: int) -> int:
    return length + sum(len(k) + len(v) for k, v in headers) + sum(map(len, key)) + OVERHEAD


class DigestCache:
    """A least-recently-used map of :class:`Entry`, bounded in bytes, with a time to live."""

    def __init__(self, max_bytes: int, max_item: int, ttl: float, counters: CacheCounters | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.max_item = max_item
        self.ttl = ttl
        self.enabled = max_bytes > 0 and max_item > 0 and ttl > 0
        self.counters = counters if counters is not None else CacheCounters()
        self.counters.bytes = self.counters.entries = 0  # a new cache holds nothing, whatever the old one did
        self.generation = 0  # bumped by every evict/clear: fills begun before are not kept
        self._clock = clock
        self._items: OrderedDict[Key, Entry] = OrderedDict()
        self._size = 0
        self._pending: dict[Key, int] = {}  # fills in flight and the room each reserved
        self._reserved = 0
        self.on_settled: Callable[[Key], None] | None = None  # told when a fill ends, kept or not

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: Key, accept: Iterable[str] = (), count: bool = True) -> Entry | None:
        """The entry for ``key`` if it is fresh (and, for a manifest, acceptable); counts a hit or a miss.

        ``count=False`` leaves the counting to the caller (:meth:`tally`),
        which may look again after waiting for a fill in flight.
        """
        entry = self._items.get(key)
        if entry is not None and entry.expires <= self._clock():
            self._drop(key, "ttl")
            entry = None
        if entry is not None and key[1] == "manifest" and not accepts(accept, entry.media_type):
            entry = None
        if entry is not None:
            self._items.move_to_end(key)
        if count:
            self.tally(entry is not None)
        return entry

    def tally(self, hit: bool) -> None:
        if hit:
            self.counters.hits += 1
        else:
            self.counters.misses += 1

    def filling(self, key: Key) -> bool:
        """True while a fill for ``key`` is in flight."""
        return key in self._pending

    def begin(self, key: Key, status: int, headers: Headers, length: int | None) -> Fill | None:
        """A :class:`Fill` for a forwarded answer worth keeping, or None.

        Worth keeping: a 200 with a known length within ``max_item``, for a
        key neither held nor being filled already (a storm of misses makes one
        copy, not 200). The copy's room is reserved now, out of the same
        ``max_bytes`` (least recently used entries make way), so copies in
        flight cannot take the memory past the bound either.
        """
        if (not self.enabled or status != 200 or length is None or length > self.max_item
                or key in self._pending or key in self._items):
            return None
        weight = _weight(key, headers, length)
        while self._size + self._reserved + weight > self.max_bytes and self._items:
            self._drop(next(iter(self._items)), "lru")
        if self._size + self._reserved + weight > self.max_bytes:
            return None  # other copies in flight hold the room
        self._pending[key] = weight
        self._reserved += weight
        return Fill(self, key, headers, length, self.generation)

    def release(self, key: Key) -> None:
        """A fill ended (kept or not): its reserved room is free again, and whoever waits for it is told."""
        self._reserved -= self._pending.pop(key, 0)
        if self.on_settled is not None:
            self.on_settled(key)

    def put(self, key: Key, headers: Headers, body: bytes, generation: int) -> bool:
        """Keep ``body`` (already verified) unless an eviction happened since its fill began, or it cannot fit."""
        self._reserved -= self._pending.pop(key, 0)  # the room it reserved becomes the entry's
        if generation != self.generation or len(body) > self.max_item:
            return False
        weight = _weight(key, headers, len(body))
        if weight > self.max_bytes:
            return False
        content_type = next((v for k, v in headers if k.lower() == "content-type"), "")
        if key in self._items:
            self._drop(key, None)
        self._items[key] = Entry(headers, body, media_type(content_type), self._clock() + self.ttl, weight)
        self._size += weight
        self.counters.stored += 1
        while self._size + self._reserved > self.max_bytes and len(self._items) > 1:
            self._drop(next(iter(self._items)), "lru")
        self._publish()
        return True

    def evict(self, repository: str, digest: str) -> int:
        """Forget ``digest`` in ``repository`` (both as manifest and as blob): it was deleted through us."""
        self.generation += 1
        dropped = 0
        for kind in KINDS:
            if (repository, kind, digest) in self._items:
                self._drop((repository, kind, digest), "delete")
                dropped += 1
        return dropped

    def clear(self) -> int:
        """Forget everything (``gc`` ran: any digest may be gone); the number of entries dropped."""
        self.generation += 1
        n = len(self._items)
        self._items.clear()
        self._size = 0
        self.counters.evicted["clear"] += n
        self._publish()
        return n

    def _drop(self, key: Key, reason: str | None) -> None:
        entry = self._items.pop(key)
        self._size -= entry.weight
        if reason is not None:
            self.counters.evicted[reason] += 1
        self._publish()

    def _publish(self) -> None:
        self.counters.bytes = self._size
        self.counters.entries = len(self._items)


class Fill:
    """A copy of one forwarded body, kept only if it is complete and hashes to the digest it was asked by."""

    __slots__ = ("_cache", "_chunks", "_closed", "_generation", "_hash", "_headers", "_key", "_length", "_size")

    def __init__(self, cache: DigestCache, key: Key, headers: Headers, length: int, generation: int) -> None:
        self._cache = cache
        self._key = key
        self._headers = headers
        self._length = length
        self._generation = generation
        self._hash = hashlib.new(key[2].partition(":")[0])
        self._chunks: list[bytes] = []
        self._size = 0
        self._closed = False

    def add(self, chunk: bytes) -> None:
        self._size += len(chunk)
        if self._size <= self._length:  # more than announced is refused in done(); hold no more than that
            self._hash.update(chunk)
            self._chunks.append(chunk)

    def done(self) -> bool:
        """The whole body arrived: keep it if it is what was asked for; True when kept."""
        if self._closed:
            return False
        self._closed = True
        expected = self._key[2].partition(":")[2]
        if self._size != self._length or self._hash.hexdigest() != expected:
            self._cache.counters.rejected += 1
            self._cache.release(self._key)
            return False
        try:
            return self._cache.put(self._key, self._headers, b"".join(self._chunks), self._generation)
        finally:
            self._chunks = []
            self._cache.release(self._key)  # after the entry is in: whoever waited finds it

    def close(self) -> None:
        """The transfer ended, perhaps half-way (the client left, the backend broke): nothing is kept."""
        if not self._closed:
            self._closed = True
            self._cache.release(self._key)
        self._chunks = []
