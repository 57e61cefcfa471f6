"""Scale-out: three replicas behind a real HAProxy (round-robin, TLS passthrough), shared key and flag.

HAProxy sends PROXY v2 headers (``send-proxy-v2``) from 127.0.0.3, the one
source the replicas trust for them, so each replica sees, logs and throttles
the real client; test clients reaching a replica directly (127.0.0.1) are
ordinary clients without a header.
"""

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
from tests.support.rawhttp import BoundClient

MARK = basic("mark", "pusherpwd")
BALANCER = "127.0.0.3"


@pytest.fixture
def cluster(proxy_factory, tmp_path: Path):
    shared = tmp_path / "shared"
    shared.mkdir()
    key = shared / "token.key"
    key.write_text(base64.b64encode(os.urandom(48)).decode() + "\n")
    overrides = {"auth": {"token": {"secret_file": str(key), "service": "registry.example.org"}},
                 "maintenance_file": str(shared / "maintenance"),
                 "proxy_protocol": {"trusted": [f"{BALANCER}/32"]},
                 "throttle": {"failures": 3, "window": 300}}
    replicas = [proxy_factory(overrides=overrides) for _ in range(3)]
    lb = HAProxy(tmp_path / "haproxy", [(r.host, r.port) for r in replicas], send_proxy=True,
                 source=BALANCER).start()
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
    while statuses() != [423, 423, 423]:  # maintenance refuses writes with 423 DENIED
        assert time.monotonic() < deadline, statuses()
        time.sleep(0.1)
    assert all(c.request("GET", "/v2/_catalog").status == 200 for c in clients)
    (shared / "maintenance").unlink()
    deadline = time.monotonic() + 15
    while statuses() != [202, 202, 202]:
        assert time.monotonic() < deadline, statuses()
        time.sleep(0.1)


def _lines_from(replica, address: str) -> list[str]:
    return re.findall(rf"^{re.escape(address)} - .*$", replica.log_text(), re.M)


def test_replicas_log_and_throttle_the_real_client_behind_haproxy(cluster, tls_files):
    replicas, lb, _ = cluster
    client = BoundClient(lb.url, tls_files.ca_cert, "127.0.0.2")
    # round-robin over the replicas HAProxy has seen UP: a replica that started last may join a
    # health check later, so keep connecting (bounded) until every replica has logged this client
    deadline = time.monotonic() + 30
    while not all(_lines_from(r, "127.0.0.2") for r in replicas):
        assert time.monotonic() < deadline, [r.log_tail(5) for r in replicas]
        assert client.request("GET", "/v2/", [("Authorization", MARK)]).status == 200
        time.sleep(0.2)
    for replica in replicas:
        assert all(" - mark [" in line for line in _lines_from(replica, "127.0.0.2"))
        assert not _lines_from(replica, BALANCER) and not _lines_from(replica, "127.0.0.1")

    # failed logins from 127.0.0.2 are counted against 127.0.0.2 (throttle.failures: 3 per replica) ...
    statuses = []
    while 429 not in statuses:
        assert len(statuses) < 20, statuses
        statuses.append(client.request("GET", "/v2/", [("Authorization", basic("mark", "wrong"))]).status)
    assert set(statuses) == {401, 429}
    # ... not against HAProxy's address: another client, through the same balancer, logs in on every replica
    other = BoundClient(lb.url, tls_files.ca_cert, "127.0.0.4")
    assert [other.request("GET", "/v2/", [("Authorization", MARK)]).status for _ in range(3)] == [200] * 3
    throttled = [line for r in replicas for line in _lines_from(r, "127.0.0.2") if '" 429 ' in line]
    assert throttled, "the 429 was logged with the real client's address"


def test_health_checks_with_local_headers_are_accepted_quietly(cluster):
    replicas, lb, _ = cluster
    time.sleep(1.5)  # HAProxy checks every 500 ms: connect, a v2 LOCAL header (no address), close
    assert "is DOWN" not in lb.log_text()
    for replica in replicas:
        assert "proxy_protocol:" not in replica.log_text(), replica.log_tail(10)
