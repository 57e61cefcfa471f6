"""Maintenance as docker and podman users see it: the push stops at once and prints the operator's reason.

Measured while choosing the status: with 503 docker retried each layer for
about 50 s and then printed only "received unexpected HTTP status: 503
Service Unavailable", and podman printed that line at once; with a 4xx and a
JSON error body both stop at once and print ``denied: <message>``.
"""

from __future__ import annotations

import time

from tests.integration.test_clients import backend_tags, to_docker_archive
from tests.integration.test_ops_maintenance import cli
from tests.support.clients import must

QUICK = 20.0  # a retrying client takes ~50 s; one that stops at once takes well under this


def test_docker_and_podman_stop_at_once_and_print_the_reason(
        proxy_factory, docker_daemon, docker_client, podman, oci_image, tls_files, tmp_path, registry):
    proxy = proxy_factory()
    host = proxy.host_port
    docker_daemon.trust(host, tls_files.ca_cert)
    image = oci_image(tag="v1", layers=1)
    must(docker_client.load(to_docker_archive(image, tmp_path / "img.tar", "example.test/maint")))
    must(docker_client.login(host, "mark", "pusherpwd"))
    must(podman.login(host, "mark", "pusherpwd"))
    must(podman.load_oci(image.ref, "localhost/test/maint:v1"))
    config = str(proxy.config_path)
    on = must(cli("maintenance", "on", "--config", config, "--reason", "disk swap", "--until", "at 16:00 UTC"))
    assert "423" in on.stdout
    time.sleep(1.2)  # every worker has re-read the flag (checked every 0.5 s)

    must(docker_client.tag("example.test/maint:v1", f"{host}/maint/docker:v1"))
    started = time.monotonic()
    pushed = docker_client.push(f"{host}/maint/docker:v1")
    took = time.monotonic() - started
    said = pushed.stderr + pushed.stdout
    assert pushed.returncode != 0 and took < QUICK, (took, said)
    assert "read-only for maintenance" in said and "disk swap" in said and "16:00 UTC" in said, said

    started = time.monotonic()
    pushed = podman.push("localhost/test/maint:v1", f"{host}/maint/podman:v1")
    took = time.monotonic() - started
    assert pushed.returncode != 0 and took < QUICK, (took, pushed.stderr)
    assert "denied: the registry is read-only for maintenance" in pushed.stderr and "disk swap" in pushed.stderr
    for repo in ("maint/docker", "maint/podman"):  # nothing was written behind the refusal
        assert backend_tags(registry, repo) == []

    must(cli("maintenance", "off", "--config", config))
    time.sleep(1.2)
    must(docker_client.push(f"{host}/maint/docker:v1"))  # and writes work again, same client, no re-login

