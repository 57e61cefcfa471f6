"""The digest cache: bounded in bytes, least recently used out first, oversized items never kept."""

from __future__ import annotations

from proxy.ui.cache import ByteLRU


def test_the_bound_holds_and_the_least_recently_used_goes_first() -> None:
    cache = ByteLRU(max_bytes=3 * 1200, max_item=2000)
    for key in "abc":
        cache.put(("m", "r", key), b"x" * 1000)
    assert len(cache) == 3 and cache.size <= 3600
    assert cache.get(("m", "r", "a")) == b"x" * 1000  # a is now the most recent
    cache.put(("m", "r", "d"), b"y" * 1000)
    assert cache.get(("m", "r", "b")) is None
    assert cache.get(("m", "r", "a")) is not None and cache.get(("m", "r", "d")) is not None
    assert cache.size <= 3600
    assert (cache.hits, cache.misses) == (3, 1)


def test_an_item_over_the_item_limit_is_not_kept() -> None:
    cache = ByteLRU(max_bytes=10_000, max_item=500)
    cache.put(("c", "r", "big"), b"z" * 1000)
    assert cache.get(("c", "r", "big")) is None and cache.size == 0


def test_replacing_a_key_does_not_leak_its_old_size() -> None:
    cache = ByteLRU(max_bytes=10_000, max_item=5000)
    cache.put(("m", "r", "a"), b"1" * 1000)
    before = cache.size
    cache.put(("m", "r", "a"), b"2" * 1000)
    assert cache.size == before and len(cache) == 1


def test_repository_is_part_of_the_key() -> None:
    cache = ByteLRU()
    cache.put(("m", "public/app", "sha256:1"), b"{}")
    assert cache.get(("m", "private/app", "sha256:1")) is None
