"""Scale-out: three replicas behind a real HAProxy (round-robin, TLS passthrough), shared key and flag."""

from __future__ import annotations

import base64
import os
import re
import time
from pathlib import Path

import pytest

from tests.support.clients import must
from tests.support.haproxy import HAProxy
from tests.support.httpclient import Client, basic

MARK = basic("mark", "pusherpwd")


@pytest.fixture
def cluster(proxy_factory, tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    key = shared / "token.key"
    key.write_text(base64.b64encode(os.urandom(48)).decode() + "\n")
    overrides = {"auth": {"token": {"secret_file": str(key), "service": "registry.example.org"}},
                 "maintenance_file": str(shared / "maintenance")}
    replicas = [proxy_factory(overrides=overrides) for _ in range(3)]
    lb = HAProxy(tmp_path / "haproxy", [(r.host, r.port) for r in replicas]).start()
    yield replicas, lb, shared
    lb.stop()


def _requests_seen(replica) -> int:
    return len(re.findall(r'^\S+ - \S+ \[[^]]+\] "', replica.log_text(), re.M))


def test_podman_push_through_haproxy_lands_on_several_replicas(cluster, podman, oci_image):
    replicas, lb, _ = cluster
    before = [_requests_seen(r) for r in replicas]
    image = oci_image(layers=3, files_per_layer=1, file_size=64 * 1024)
    must(podman.load_oci(image.ref, "localhost/scale/img:v1"))
    must(podman.login(lb.host_port, "mark", "pusherpwd"))
    must(podman.push("localhost/scale/img:v1", f"{lb.host_port}/scale/img:v1"))
    must(podman.rmi("localhost/scale/img:v1"))
    must(podman.pull(f"{lb.host_port}/scale/img:v1"))

    def served() -> list[int]:
        return [_requests_seen(r) - b for r, b in zip(replicas, before, strict=True)]

    deadline = time.monotonic() + 15  # access lines are written just after each response's last byte
    while sum(1 for n in served() if n > 0) < 2:
        assert time.monotonic() < deadline, served()
        time.sleep(0.1)


def test_a_token_from_one_replica_works_on_another(cluster, tls_files):
    replicas, _, _ = cluster
    first, second = (Client(r.url, tls_files.ca_cert) for r in replicas[:2])
    issued = first.request("GET", "/token?service=registry.example.org&scope=repository:scale/tok:pull,push",
                           [("Authorization", MARK)])
    assert issued.status == 200
    bearer = [("Authorization", "Bearer " + issued.json()["token"])]
    assert second.request("POST", "/v2/scale/tok/blobs/uploads/", bearer, body=b"").status == 202


def test_maintenance_set_once_affects_every_replica(cluster, tls_files):
    replicas, _, shared = cluster
    clients = [Client(r.url, tls_files.ca_cert) for r in replicas]

    def statuses() -> list[int]:
        return [c.request("POST", "/v2/scale/m/blobs/uploads/", [("Authorization", MARK)], body=b"").status
                for c in clients]

    (shared / "maintenance").write_text("storage move\n")
    deadline = time.monotonic() + 15
    while statuses() != [503, 503, 503]:
        assert time.monotonic() < deadline, statuses()
        time.sleep(0.1)
    assert all(c.request("GET", "/v2/_catalog").status == 200 for c in clients)
    (shared / "maintenance").unlink()
    deadline = time.monotonic() + 15
    while statuses() != [202, 202, 202]:
        assert time.monotonic() < deadline, statuses()
        time.sleep(0.1)
