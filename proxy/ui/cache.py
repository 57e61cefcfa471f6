"""A least-recently-used cache bounded in bytes, for what never changes: content fetched by digest.

A manifest or config fetched by digest (and checked against it) is the same
forever, so the catalog keeps the raw bytes and a repository page with 100
tags costs one request per digest ever seen, then none. Entries are keyed by
repository *and* digest: the same bytes in another repository are fetched
again, because a digest named in one repository (say, in a hostile index)
must never show what only another, perhaps private, repository holds.

Raw bytes, not parsed objects, are kept so the bound is exact: parsing a
cached manifest again costs microseconds, a memory bound that guesses at
Python object sizes costs trust.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

__all__ = ["DEFAULT_MAX_BYTES", "DEFAULT_MAX_ITEM", "ByteLRU"]

DEFAULT_MAX_BYTES = 32 * 1024 * 1024
DEFAULT_MAX_ITEM = 4 * 1024 * 1024  # distribution's own manifest limit; larger configs are not kept
_OVERHEAD = 200  # key, tuple and dict slot: so a million empty values still count


@dataclass
class ByteLRU:
    max_bytes: int = DEFAULT_MAX_BYTES
    max_item: int = DEFAULT_MAX_ITEM
    hits: int = 0
    misses: int = 0
    _items: OrderedDict[tuple[str, ...], bytes] = field(default_factory=OrderedDict, repr=False)
    _size: int = 0

    @property
    def size(self) -> int:
        """Bytes held (values plus a fixed overhead per entry)."""
        return self._size

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: tuple[str, ...]) -> bytes | None:
        value = self._items.get(key)
        if value is None:
            self.misses += 1
            return None
        self._items.move_to_end(key)
        self.hits += 1
        return value

    def put(self, key: tuple[str, ...], value: bytes) -> None:
        """Keep ``value`` (unless it alone is over ``max_item``), dropping the least recently used."""
        weight = len(value) + _OVERHEAD
        if weight > self.max_item:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self._size -= len(old) + _OVERHEAD
        self._items[key] = value
        self._size += weight
        while self._size > self.max_bytes and self._items:
            _, dropped = self._items.popitem(last=False)
            self._size -= len(dropped) + _OVERHEAD
