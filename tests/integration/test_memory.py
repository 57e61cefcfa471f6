"""Streaming, proven by memory: RSS must not grow with blob size.

Uploads then downloads a 256 MiB and a 1 GiB blob through the proxy while
sampling its RSS from /proc. The bound (50 MiB growth) is behavioural: a
buffering proxy would grow by the blob size, whatever the machine's speed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.support.httpclient import Client, basic, pattern_stream, stream_digest, upload_blob

MiB = 1 << 20
GROWTH_LIMIT = 50 * MiB


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


class Sampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss(self.pid))
            time.sleep(0.05)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


@pytest.mark.parametrize("size_mib", [256, 1024])
def test_rss_flat_for_large_blob_up_and_down(proxy_factory, tls_files, size_mib):
    proxy = proxy_factory()
    client = Client(proxy.url, tls_files.ca_cert, timeout=300)
    auth = basic("mark", "pusherpwd")
    client.request("GET", "/v2/", [("Authorization", auth)])  # warm up: TLS, pools, bcrypt cache
    size = size_mib * MiB
    seed = f"mem-{size_mib}".encode()
    digest = stream_digest(size, seed)
    baseline = rss(proxy.pid)
    with Sampler(proxy.pid) as up:
        done = upload_blob(client, f"mem/blob{size_mib}", auth, pattern_stream(size, seed=seed), digest)
    assert done.status == 201, done.body
    with Sampler(proxy.pid) as down:
        status, hexdigest, got = client.stream_download(f"/v2/mem/blob{size_mib}/blobs/{digest}")
    assert (status, got) == (200, size)
    assert "sha256:" + hexdigest == digest
    growth = max(up.peak, down.peak) - baseline
    print(f"{size_mib} MiB: baseline {baseline / MiB:.1f} MiB, peak up {up.peak / MiB:.1f} MiB, "
          f"peak down {down.peak / MiB:.1f} MiB, growth {growth / MiB:.1f} MiB")
    assert growth < GROWTH_LIMIT, f"RSS grew by {growth / MiB:.1f} MiB for a {size_mib} MiB blob"
