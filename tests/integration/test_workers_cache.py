"""``workers: 2``, each with its own digest cache: a ``DELETE`` through one evicts in both.

Real proxy (supervisor and two worker processes), real registry behind a
tap, real TLS. Requests are steered to one worker by stopping the other
(:func:`tests.integration.test_workers.only`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from tests.integration.test_cache import OCI, asked
from tests.integration.test_workers import MARK, WORKERS, admin, only
from tests.support.httpclient import Client
from tests.support.proxyproc import ProxyProcess
from tests.support.registry import Registry
from tests.support.tap import Tap
from tests.support.tinyimage import push_tiny

PROMPTLY = 1.0  # seconds: an eviction relayed by the supervisor, far below cache.ttl (300 s)


def test_a_delete_through_one_worker_evicts_the_manifest_in_the_other(
        proxy_factory: Callable[..., ProxyProcess], registry: Registry, tls_files) -> None:
    tap = Tap(registry.port).start()
    try:
        proxy = proxy_factory(backend=tap.url, overrides=WORKERS)
        client = Client(proxy.url, tls_files.ca_cert)
        tiny = push_tiny(client, "workers/cache", "v1", auth=MARK)
        path = f"/v2/workers/cache/manifests/{tiny.digest}"
        for index in (0, 1):  # each worker fills its own cache
            with only(proxy, index):
                assert client.request("GET", path, OCI).status == 200
        tap.clear()
        for index in (0, 1):
            with only(proxy, index):
                assert client.request("GET", path, OCI).status == 200
        assert asked(tap, "GET", path) == 0  # both answer it from memory
        with only(proxy, 0):  # worker 1 is stopped meanwhile: it reads the eviction when it resumes
            assert client.request("DELETE", path, [("Authorization", MARK)]).status == 202
        deleted = time.monotonic()
        with only(proxy, 1):
            while (reply := client.request("GET", path, OCI)).status == 200:
                assert time.monotonic() - deleted < PROMPTLY, "worker 1 still answers the deleted manifest"
                time.sleep(0.02)
        assert reply.status == 404 and b"MANIFEST_UNKNOWN" in reply.body
        assert asked(tap, "GET", path) >= 1  # the registry's 404, asked again: not memory's
        status, cache = admin(proxy, "/cache")
        assert status == 200 and cache["evicted"]["delete"] == 2  # one in each worker
        assert cache["entries"] == 0
    finally:
        tap.stop()
