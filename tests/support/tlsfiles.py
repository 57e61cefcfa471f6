"""Test certificate authority and server certificate (trustme).

Integration tests talk real TLS to the proxy, so clients must trust a CA.
trustme makes a throw-away CA per session; nothing ever needs
``--tls-verify=false`` against the proxy.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme

SERVER_NAMES: tuple[str, ...] = ("localhost", "127.0.0.1")


@dataclass(frozen=True)
class TlsFiles:
    """Paths of the PEM files a test needs.

    ``cert_dir`` holds ONLY ``ca.crt``: containers/image treats every
    ``*.crt`` in a cert dir as a CA and every ``*.key`` as half of a client
    certificate pair, so the server key must not live there.
    """

    ca_cert: Path
    server_cert: Path
    server_key: Path
    cert_dir: Path


def write_tls_files(directory: Path, names: tuple[str, ...] = SERVER_NAMES) -> TlsFiles:
    """Create a CA and a server cert for ``names`` and write them to ``directory``.

    ``server.crt`` is the full chain (leaf + CA) as a real deployment would
    serve it; ``cert_dir/ca.crt`` is what skopeo/podman/dockerd are pointed at.
    """
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    leaf = ca.issue_cert(*names)

    ca_cert = directory / "ca.crt"
    server_cert = directory / "server.crt"
    server_key = directory / "server.key"
    cert_dir = directory / "certs.d"
    cert_dir.mkdir(exist_ok=True)

    ca.cert_pem.write_to_path(str(ca_cert))
    ca.cert_pem.write_to_path(str(cert_dir / "ca.crt"))
    with server_cert.open("wb") as fh:
        for blob in leaf.cert_chain_pems:
            fh.write(blob.bytes())
    leaf.private_key_pem.write_to_path(str(server_key))
    server_key.chmod(0o600)
    return TlsFiles(ca_cert=ca_cert, server_cert=server_cert, server_key=server_key, cert_dir=cert_dir)
