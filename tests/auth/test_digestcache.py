"""The digest cache's rules, pure: what is kept, for whom, how much, and when it goes (clock injected)."""

from __future__ import annotations

import hashlib

import pytest

from auth.digestcache import OVERHEAD, CacheCounters, DigestCache, Fill, accepts, cache_digest

OCI = "application/vnd.oci.image.manifest.v1+json"
DOCKER = "application/vnd.docker.distribution.manifest.v2+json"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def headers(content_type: str = OCI, digest: str = "") -> tuple[tuple[str, str], ...]:
    return (("Content-Type", content_type), ("Docker-Content-Digest", digest), ("Etag", f'"{digest}"'))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fill(cache: DigestCache, repo: str, kind: str, body: bytes, content_type: str = OCI,
         length: int | None = None) -> bool:
    """One forwarded answer streamed through a Fill in two chunks, as the forwarder does."""
    digest = sha(body)
    f = cache.begin((repo, kind, digest), 200, headers(content_type, digest), len(body) if length is None else length)
    assert f is not None
    f.add(body[:3])
    f.add(body[3:])
    kept = f.done()
    f.close()
    return kept


@pytest.mark.parametrize(("ref", "digest"), [
    ("sha256:" + "a" * 64, True), ("sha512:" + "0" * 128, True), ("latest", False), ("v1.0", False),
    ("sha256:" + "A" * 64, False), ("sha256:" + "a" * 63, False), ("sha384:" + "a" * 96, False),
    ("sha256:" + "a" * 64 + "x", False),
])
def test_only_verifiable_digests_are_cache_keys_never_a_tag(ref: str, digest: bool) -> None:
    assert (cache_digest(ref) == ref) is digest


@pytest.mark.parametrize(("accept", "ok"), [
    ([OCI], True), ([f"{DOCKER}, {OCI}"], True), ([DOCKER, f"{OCI}; q=0.5"], True), ([OCI.upper()], True),
    ([], False), (["*/*"], False), (["application/*"], False), ([DOCKER], False), ([f"{OCI};q=0"], False),
    ([OCI + "x"], False),
])
def test_a_manifest_is_acceptable_only_when_accept_names_its_type(accept: list[str], ok: bool) -> None:
    assert accepts(accept, OCI) is ok


def test_a_verified_body_is_kept_and_served_with_its_headers() -> None:
    cache = DigestCache(1 << 20, 1 << 16, 60)
    body = b'{"schemaVersion":2}'
    assert fill(cache, "team/app", "manifest", body)
    entry = cache.get(("team/app", "manifest", sha(body)), [OCI])
    assert entry is not None and entry.body == body and entry.media_type == OCI
    assert ("Docker-Content-Digest", sha(body)) in entry.headers
    assert cache.counters.hits == 1 and cache.counters.stored == 1 and cache.counters.entries == 1


def test_a_body_that_does_not_hash_to_its_digest_is_never_kept() -> None:
    cache = DigestCache(1 << 20, 1 << 16, 60)
    claimed = sha(b"the real manifest")
    f = cache.begin(("a", "blob", claimed), 200, headers(), 17)
    assert f is not None
    f.add(b"a lying manifest!")
    assert f.done() is False
    f.close()
    assert cache.get(("a", "blob", claimed)) is None
    assert cache.counters.rejected == 1 and cache.counters.entries == 0
    assert cache.begin(("a", "blob", claimed), 200, headers(), 17) is not None  # the room was given back


def test_a_body_cut_short_or_too_long_is_not_kept() -> None:
    cache = DigestCache(1 << 20, 1 << 16, 60)
    body = b"0123456789"
    assert not fill(cache, "a", "blob", body, length=11)  # announced 11, got 10
    assert not fill(cache, "a", "blob", body, length=9)  # announced 9, got 10
    abandoned = cache.begin(("a", "blob", sha(body)), 200, headers(), 10)
    assert abandoned is not None
    abandoned.add(body[:4])
    abandoned.close()  # the client left half-way: nothing kept, room given back
    assert len(cache) == 0 and cache.counters.rejected == 2
    assert fill(cache, "a", "blob", body)


@pytest.mark.parametrize(("status", "length"), [(404, 10), (206, 10), (307, 0), (200, None), (200, 65537)])
def test_only_a_200_of_known_length_within_max_item_is_copied(status: int, length: int | None) -> None:
    cache = DigestCache(1 << 20, 65536, 60)
    assert cache.begin(("a", "blob", sha(b"x")), status, headers(), length) is None


def test_keyed_by_repository_and_kind() -> None:
    cache = DigestCache(1 << 20, 1 << 16, 60)
    body = b"config bytes"
    assert fill(cache, "public/app", "blob", body, "application/octet-stream")
    assert cache.get(("private/app", "blob", sha(body))) is None
    assert cache.get(("public/app", "manifest", sha(body)), ["application/octet-stream"]) is None
    assert cache.get(("public/app", "blob", sha(body))) is not None


def test_a_manifest_is_a_miss_for_a_client_whose_accept_does_not_name_it() -> None:
    cache = DigestCache(1 << 20, 1 << 16, 60)
    body = b'{"mediaType":"oci"}'
    assert fill(cache, "a", "manifest", body, OCI + "; charset=utf-8")
    key = ("a", "manifest", sha(body))
    assert cache.get(key, ["*/*"]) is None
    assert cache.get(key, [DOCKER]) is None
    assert cache.get(key, [OCI]) is not None
    assert (cache.counters.hits, cache.counters.misses) == (1, 2)


def test_memory_is_bounded_by_max_bytes_counting_headers_least_recently_used_first() -> None:
    bodies = [bytes([i]) * 1000 for i in range(5)]
    one = 1000 + sum(len(k) + len(v) for k, v in headers(OCI, sha(bodies[0]))) + len("a") + len("blob") \
        + len(sha(bodies[0])) + OVERHEAD
    cache = DigestCache(3 * one, 2000, 60)
    for body in bodies[:3]:
        assert fill(cache, "a", "blob", body)
    assert cache.size == 3 * one and cache.counters.bytes == 3 * one
    assert cache.get(("a", "blob", sha(bodies[0]))) is not None  # now the most recently used
    assert fill(cache, "a", "blob", bodies[3])
    assert cache.get(("a", "blob", sha(bodies[1]))) is None  # the least recently used made way
    assert cache.get(("a", "blob", sha(bodies[0]))) is not None
    assert cache.size <= cache.max_bytes and len(cache) == 3
    assert cache.counters.evicted["lru"] == 1


def test_copies_in_flight_count_against_max_bytes_and_one_per_digest() -> None:
    cache = DigestCache(3000, 2000, 60)
    big = b"x" * 1500
    first = cache.begin(("a", "blob", sha(big)), 200, (), 1500)
    assert first is not None
    assert cache.begin(("a", "blob", sha(big)), 200, (), 1500) is None  # a storm of misses: one copy
    assert cache.begin(("a", "blob", sha(b"y" * 1500)), 200, (), 1500) is None  # no room left for a second
    first.add(big)
    assert first.done()
    first.close()
    assert cache.size <= 3000


def test_entries_live_ttl_seconds() -> None:
    clock = Clock()
    cache = DigestCache(1 << 20, 1 << 16, 300, clock=clock)
    body = b"a config"
    assert fill(cache, "a", "blob", body)
    clock.now += 299
    assert cache.get(("a", "blob", sha(body))) is not None
    clock.now += 1
    assert cache.get(("a", "blob", sha(body))) is None
    assert cache.counters.evicted["ttl"] == 1 and cache.counters.entries == 0 and cache.size == 0


def test_evict_forgets_one_digest_in_one_repository_as_manifest_and_blob() -> None:
    cache = DigestCache(1 << 20, 1 << 16, 60)
    body = b'{"a":1}'
    for repo, kind in (("a", "manifest"), ("a", "blob"), ("b", "manifest")):
        assert fill(cache, repo, kind, body)
    assert cache.evict("a", sha(body)) == 2
    assert cache.get(("a", "manifest", sha(body)), [OCI]) is None
    assert cache.get(("a", "blob", sha(body))) is None
    assert cache.get(("b", "manifest", sha(body)), [OCI]) is not None
    assert cache.counters.evicted["delete"] == 2


def test_a_fill_that_began_before_an_eviction_is_not_kept() -> None:
    """A GET racing a DELETE: its bytes left the registry before the delete, they must not come back."""
    cache = DigestCache(1 << 20, 1 << 16, 60)
    for drop in (lambda: cache.evict("a", sha(b"m")), cache.clear):
        f = cache.begin(("a", "manifest", sha(b"m")), 200, headers(), 1)
        assert isinstance(f, Fill)
        f.add(b"m")
        drop()
        assert f.done() is False
        f.close()
        assert len(cache) == 0
    assert fill(cache, "a", "manifest", b"m")  # a fill begun after is kept


def test_clear_forgets_everything() -> None:
    cache = DigestCache(1 << 20, 1 << 16, 60)
    for i in range(4):
        assert fill(cache, "a", "blob", bytes([i]) * 10)
    assert cache.clear() == 4
    assert len(cache) == 0 and cache.size == 0 and cache.counters.bytes == 0
    assert cache.counters.evicted["clear"] == 4


@pytest.mark.parametrize(("max_bytes", "max_item", "ttl"), [(0, 100, 60), (1000, 0, 60), (1000, 100, 0)])
def test_zero_turns_it_off(max_bytes: int, max_item: int, ttl: float) -> None:
    cache = DigestCache(max_bytes, max_item, ttl)
    assert cache.enabled is False
    assert cache.begin(("a", "blob", sha(b"x")), 200, (), 1) is None


def test_a_new_cache_publishes_that_it_holds_nothing() -> None:
    counters = CacheCounters()
    old = DigestCache(1 << 20, 1 << 16, 60, counters)
    assert fill(old, "a", "blob", b"kept")
    assert counters.entries == 1
    DigestCache(1 << 20, 1 << 16, 60, counters)  # a reload with other settings
    assert (counters.entries, counters.bytes, counters.stored) == (0, 0, 1)
