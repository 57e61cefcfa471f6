"""TLS as the seed's vhost had it: TLS 1.2 minimum, AEAD ciphers, ALPN http/1.1 only."""

from __future__ import annotations

import socket
import ssl

import pytest


def _handshake(proxy, tls_files, **settings) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(tls_files.ca_cert))
    for name, value in settings.items():
        if name == "alpn":
            ctx.set_alpn_protocols(value)
        else:
            setattr(ctx, name, value)
    raw = socket.create_connection((proxy.host, proxy.port), timeout=10)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def test_tls12_and_13_accepted_with_aead_and_http11(proxy_factory, tls_files):
    proxy = proxy_factory()
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        with _handshake(proxy, tls_files, minimum_version=version, maximum_version=version,
                        alpn=["h2", "http/1.1"]) as conn:
            assert conn.version() == {"TLSv1_2": "TLSv1.2", "TLSv1_3": "TLSv1.3"}[version.name]
            assert "GCM" in conn.cipher()[0] or "CHACHA" in conn.cipher()[0]
            assert conn.selected_alpn_protocol() == "http/1.1"  # never h2


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion:DeprecationWarning")
def test_tls11_refused(proxy_factory, tls_files):
    proxy = proxy_factory()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(str(tls_files.ca_cert))
    ctx.set_ciphers("ALL:@SECLEVEL=0")
    ctx.minimum_version = ssl.TLSVersion.TLSv1
    ctx.maximum_version = ssl.TLSVersion.TLSv1_1
    raw = socket.create_connection((proxy.host, proxy.port), timeout=10)
    with pytest.raises((ssl.SSLError, ConnectionResetError)):
        ctx.wrap_socket(raw, server_hostname="localhost")
    raw.close()
