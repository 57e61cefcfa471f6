"""The digest cache against the real registry, over real TLS, with real clients; the tap proves what the
registry was (not) asked.

Right bytes (skopeo checks every digest), the registry's own headers, a
private repository stays private, nothing by tag, and eviction by a
``DELETE`` through the proxy, by ``gc`` after the real collector, and by
``cache.ttl`` for a change made behind the proxy's back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.test_ops_maintenance import cli
from tests.support.clients import Skopeo, must
from tests.support.httpclient import Client, Reply, basic
from tests.support.proxyproc import ProxyProcess
from tests.support.registry import Registry
from tests.support.tap import Tap
from tests.support.tinyimage import OCI_MANIFEST, Tiny, push_tiny

MARK = basic("mark", "pusherpwd")
READER = basic("reader", "readerpwd")
OCI = [("Accept", OCI_MANIFEST)]
ACCESS = {"pull": "anyone", "push": ["pusher"], "delete": ["pusher"],
          "repositories": [{"match": "private/**", "pull": "users"}]}
NOT_COMPARED = {"date", "server", "docker-distribution-api-version"}  # fresh per answer, or the proxy's own


def config_digest(client: Client, repo: str, tiny: Tiny, auth: str | None = None) -> str:
    reply = client.request("GET", f"/v2/{repo}/manifests/{tiny.digest}", [*OCI, *_auth(auth)])
    assert reply.status == 200, reply
    return str(json.loads(reply.body)["config"]["digest"])


def _auth(auth: str | None) -> list[tuple[str, str]]:
    return [("Authorization", auth)] if auth else []


def asked(tap: Tap, method: str, path: str) -> int:
    return sum(1 for r in tap.requests() if r.method == method and r.target == path)


def headers_of(reply: Reply) -> list[tuple[str, str]]:
    return sorted((k.lower(), v) for k, v in reply.headers if k.lower() not in NOT_COMPARED)


def admin_cache(proxy: ProxyProcess) -> dict[str, object]:
    return Client(str(proxy.admin_url)).request("GET", "/cache").json()


@pytest.fixture
def private_tapped(proxy_factory: Callable[..., ProxyProcess],
                   registry: Registry) -> Iterator[tuple[ProxyProcess, Tap]]:
    """``tapped`` with a private corner: ``private/**`` is for users only."""
    tap = Tap(registry.port).start()
    yield proxy_factory(backend=tap.url, access=ACCESS), tap
    tap.stop()


def test_a_second_pull_by_digest_comes_from_memory_with_every_digest_right(
        tapped: tuple[ProxyProcess, Tap], tls_files, skopeo: Skopeo, tmp_path: Path) -> None:
    proxy, tap = tapped
    client = Client(proxy.url, tls_files.ca_cert)
    tiny = push_tiny(client, "cache/pull", "v1", auth=MARK, layer_size=200_000)
    ref = f"{proxy.host_port}/cache/pull@{tiny.digest}"
    must(skopeo.copy(f"docker://{ref}", f"oci:{tmp_path / 'first'}:v1"))
    config = config_digest(client, "cache/pull", tiny)
    tap.clear()
    must(skopeo.copy(f"docker://{ref}", f"oci:{tmp_path / 'second'}:v1"))  # skopeo verifies every digest
    for path in (f"/v2/cache/pull/manifests/{tiny.digest}", f"/v2/cache/pull/blobs/{config}"):
        assert asked(tap, "GET", path) == 0, [r.target for r in tap.requests()]
    first = sorted(p.name for p in (tmp_path / "first" / "blobs" / "sha256").iterdir())
    assert first == sorted(p.name for p in (tmp_path / "second" / "blobs" / "sha256").iterdir())
    assert int(admin_cache(proxy)["hits"]) >= 3  # manifest, config, layer


def test_answers_from_memory_carry_the_registrys_headers(tapped: tuple[ProxyProcess, Tap], registry: Registry,
                                                          tls_files) -> None:
    proxy, tap = tapped
    client = Client(proxy.url, tls_files.ca_cert)
    direct = Client(registry.url)
    tiny = push_tiny(client, "cache/headers", "v1", auth=MARK)
    config = config_digest(direct, "cache/headers", tiny)
    for path, accept in ((f"/v2/cache/headers/manifests/{tiny.digest}", OCI),
                         (f"/v2/cache/headers/blobs/{config}", [])):
        forwarded = client.request("GET", path, accept)
        tap.clear()
        cached = client.request("GET", path, accept)
        head = client.request("HEAD", path, accept)
        assert asked(tap, "GET", path) == 0 and asked(tap, "HEAD", path) == 0
        reference = direct.request("GET", path, accept)
        assert cached.status == head.status == 200
        assert cached.body == forwarded.body == reference.body and head.body == b""
        assert headers_of(cached) == headers_of(forwarded) == headers_of(reference) == headers_of(head)
        for name in ("Content-Type", "Docker-Content-Digest", "Content-Length", "Etag"):
            assert cached.header(name) == reference.header(name), name
        assert cached.all("Docker-Distribution-Api-Version") == ["registry/2.0"]
        assert cached.header("Date")


def test_memory_never_answers_who_may_not_pull(private_tapped: tuple[ProxyProcess, Tap], tls_files) -> None:
    proxy, tap = private_tapped
    client = Client(proxy.url, tls_files.ca_cert)
    tiny = push_tiny(client, "private/cached", "v1", auth=MARK)
    path = f"/v2/private/cached/manifests/{tiny.digest}"
    assert client.request("GET", path, [*OCI, ("Authorization", MARK)]).status == 200
    tap.clear()
    for method in ("GET", "HEAD"):
        refused = client.request(method, path, OCI)
        assert refused.status == 401 and refused.header("WWW-Authenticate")
        assert tiny.digest not in refused.body.decode() and b"schemaVersion" not in refused.body
        assert client.request(method, path, [*OCI, ("Authorization", basic("mark", "wrong"))]).status == 401
    assert client.request("GET", path, [*OCI, ("Authorization", READER)]).status == 200  # a user: from memory
    assert tap.requests() == []


def test_nothing_is_kept_by_tag_and_a_delete_through_the_proxy_evicts(tapped: tuple[ProxyProcess, Tap],
                                                                      tls_files) -> None:
    proxy, tap = tapped
    client = Client(proxy.url, tls_files.ca_cert)
    tiny = push_tiny(client, "cache/delete", "v1", auth=MARK)
    config = config_digest(client, "cache/delete", tiny)  # the manifest by digest is in memory now
    assert client.request("GET", f"/v2/cache/delete/blobs/{config}").status == 200  # and the config
    tap.clear()
    for _ in range(2):
        assert client.request("GET", "/v2/cache/delete/manifests/v1", OCI).status == 200
    assert asked(tap, "GET", "/v2/cache/delete/manifests/v1") == 2
    for path in (f"/v2/cache/delete/manifests/{tiny.digest}", f"/v2/cache/delete/blobs/{config}"):
        assert client.request("GET", path, OCI).status == 200
        assert asked(tap, "GET", path) == 0  # from memory
        assert client.request("DELETE", path, [("Authorization", MARK)]).status == 202
        for method in ("GET", "HEAD"):
            assert client.request(method, path, OCI).status == 404  # the registry's answer, asked again
        # a manifest HEAD that misses is asked as a GET, to fill memory (tests/proxy/http/test_cache_head.py)
        manifest = "/manifests/" in path
        assert asked(tap, "GET", path) == (2 if manifest else 1) and asked(tap, "HEAD", path) == (0 if manifest else 1)
    assert admin_cache(proxy)["evicted"]["delete"] == 2  # type: ignore[index]


def test_gc_clears_what_the_real_collector_deleted(proxy_factory: Callable[..., ProxyProcess], registry: Registry,
                                                   tls_files) -> None:
    proxy = proxy_factory()
    client = Client(proxy.url, tls_files.ca_cert)
    direct = Client(registry.url)
    tiny = push_tiny(client, "cache/gc", "v1", auth=MARK)
    path = f"/v2/cache/gc/blobs/{config_digest(client, 'cache/gc', tiny)}"
    assert client.request("GET", path).status == 200
    # behind the proxy's back: the image goes, its config is garbage for the collector
    assert direct.request("DELETE", f"/v2/cache/gc/manifests/{tiny.digest}").status == 202
    assert client.request("GET", path).status == 200  # memory does not know yet (until cache.ttl)
    result = cli("gc", "--config", str(proxy.config_path), "--timeout", "30",
                 "--run", f"docker-registry garbage-collect {registry.config_path}")
    assert result.returncode == 0, result
    assert f"gc: {proxy.admin_url}: digest cache cleared" in result.stdout
    assert direct.request("GET", path).status == 404  # the collector deleted it ...
    assert client.request("GET", path).status == 404  # ... and the proxy no longer answers it


def test_a_change_behind_the_proxys_back_ages_out_after_ttl(proxy_factory: Callable[..., ProxyProcess],
                                                           registry: Registry, tls_files) -> None:
    proxy = proxy_factory(overrides={"cache": {"ttl": 1}})
    client = Client(proxy.url, tls_files.ca_cert)
    tiny = push_tiny(client, "cache/ttl", "v1", auth=MARK)
    path = f"/v2/cache/ttl/manifests/{tiny.digest}"
    assert client.request("GET", path, OCI).status == 200
    assert Client(registry.url).request("DELETE", path).status == 202
    deadline = time.monotonic() + 30
    while client.request("GET", path, OCI).status != 404:
        assert time.monotonic() < deadline, "still answered 30 s after a 1 s ttl"
        time.sleep(0.2)
    assert admin_cache(proxy)["evicted"]["ttl"] == 1  # type: ignore[index]
