"""Signals: SIGTERM drains transfers in flight and refuses new connections; SIGHUP reloads TLS and users."""

from __future__ import annotations

import hashlib
import shutil
import signal
import socket
import ssl
import threading
import time

import trustme

from tests.support.authfiles import htpasswd_add
from tests.support.httpclient import Client, basic, pattern_stream, stream_digest, upload_blob

MARK = basic("mark", "pusherpwd")
MiB = 1 << 20


def test_sigterm_drains_transfers_and_refuses_new_connections(proxy_factory, tls_files):
    proxy = proxy_factory()
    client = Client(proxy.url, tls_files.ca_cert, timeout=120)
    size = 64 * MiB
    digest = stream_digest(size, b"drain")
    assert upload_blob(client, "sig/drain", MARK, pattern_stream(size, seed=b"drain"), digest).status == 201
    results: dict[int, tuple[int, str, int]] = {}
    errors: dict[int, BaseException] = {}
    started = threading.Barrier(21)

    def download(i: int) -> None:
        try:
            conn = client.connect()
            conn.request("GET", f"/v2/sig/drain/blobs/{digest}")
            resp = conn.getresponse()
            sha, got = hashlib.sha256(), 0
            first = resp.read(MiB)
            sha.update(first)
            got += len(first)
            started.wait(60)
            while chunk := resp.read(MiB):
                sha.update(chunk)
                got += len(chunk)
                time.sleep(0.02)  # a slightly slow reader: the drain must wait for it
            results[i] = (resp.status, "sha256:" + sha.hexdigest(), got)
            conn.close()
        except BaseException as exc:
            errors[i] = exc

    threads = [threading.Thread(target=download, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    started.wait(60)
    proxy.send_signal(signal.SIGTERM)
    refused = False
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not refused:
        try:
            with socket.create_connection((proxy.host, proxy.port), timeout=2):
                time.sleep(0.1)
        except ConnectionRefusedError:
            refused = True
    assert refused, "new connections were still accepted during the drain"
    for t in threads:
        t.join(120)
    assert errors == {}
    assert sorted(results) == list(range(20))
    assert all(r == (200, digest, size) for r in results.values()), results
    assert proxy.wait(30) == 0
    assert "stopped" in proxy.log_text()


def _leaf_fingerprint(proxy, server_hostname: str | None) -> str:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((proxy.host, proxy.port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname=server_hostname) as sock:
        der = sock.getpeercert(binary_form=True)
    assert der is not None
    return hashlib.sha256(der).hexdigest()


def _write_leaf(ca: trustme.CA, cert_path, key_path) -> str:
    leaf = ca.issue_cert("localhost", "127.0.0.1")
    with open(cert_path, "wb") as fh:
        for blob in leaf.cert_chain_pems:
            fh.write(blob.bytes())
    leaf.private_key_pem.write_to_path(str(key_path))
    der = ssl.PEM_cert_to_DER_cert(leaf.cert_chain_pems[0].bytes().decode())
    return hashlib.sha256(der).hexdigest()


def _wait_log(proxy, text: str, count: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while proxy.log_text().count(text) < count:
        assert time.monotonic() < deadline, f"no {text!r} in the log:\n{proxy.log_tail()}"
        time.sleep(0.05)


def test_sighup_reloads_certificate_and_users(proxy_factory, tls_files):
    proxy = proxy_factory(start=False)
    cert, key = proxy.workdir / "server.crt", proxy.workdir / "server.key"
    shutil.copyfile(tls_files.server_cert, cert)
    shutil.copyfile(tls_files.server_key, key)
    proxy.config["tls"] = {"cert": "server.crt", "key": "server.key"}
    proxy.start()
    old = _leaf_fingerprint(proxy, None)
    new = _write_leaf(trustme.CA(), cert, key)
    assert new != old
    proxy.send_signal(signal.SIGHUP)
    _wait_log(proxy, "SIGHUP: reloaded certificate", 1)
    assert _leaf_fingerprint(proxy, None) == new  # by IP: no SNI sent
    assert _leaf_fingerprint(proxy, "localhost") == new  # with SNI
    # a bad new certificate keeps the current one, and the log says why
    cert.write_text("-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n")
    proxy.send_signal(signal.SIGHUP)
    _wait_log(proxy, "SIGHUP: keeping the old certificate", 1)
    assert _leaf_fingerprint(proxy, None) == new
    # a key that does not match the certificate: also kept
    _write_leaf(trustme.CA(), cert, proxy.workdir / "other.key")
    proxy.send_signal(signal.SIGHUP)
    _wait_log(proxy, "SIGHUP: keeping the old certificate", 2)
    assert _leaf_fingerprint(proxy, None) == new
    # users and groups are re-read
    htpasswd_add(proxy.workdir / "users.htpasswd", "newbie", "newbiepwd")
    (proxy.workdir / "users.groups").write_text("pusher: mark newbie\n")
    proxy.send_signal(signal.SIGHUP)
    _wait_log(proxy, "SIGHUP: re-read", 4)
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    client = Client(proxy.url, None)
    client.ctx = ctx
    reply = client.request("POST", "/v2/sig/newbie/blobs/uploads/", [("Authorization", basic("newbie", "newbiepwd"))],
                           body=b"")
    assert reply.status == 202, reply.body
