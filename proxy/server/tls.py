"""The server TLS context: the seed's Apache settings, made reloadable.

TLS 1.2 minimum, the seed's cipher list (``EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:
AES256+EDH``; TLS 1.3 suites are OpenSSL's AEAD defaults), ALPN http/1.1 only.
A certificate reload builds and validates a complete new context first and
swaps it in through the SNI callback, so a bad new cert never replaces a good one.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from proxy.config.tlsfiles import load_cert_chain

__all__ = ["CIPHERS", "ReloadableTLS", "build_context"]

CIPHERS = "EECDH+AESGCM:EDH+AESGCM:AES256+EECDH:AES256+EDH"


def build_context(cert: Path, key: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(CIPHERS)
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_alpn_protocols(["http/1.1"])
    load_cert_chain(ctx, cert, key)  # check-config's loader too: the same refusals, the same words
    return ctx


class ReloadableTLS:
    """The listening socket keeps one context; each handshake is moved to the current one."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.cert = cert
        self.key = key
        self.current = build_context(cert, key)
        self.listening = build_context(cert, key)
        self.listening.sni_callback = self._select

    def _select(self, sslobj: ssl.SSLObject, _name: str | None, _ctx: ssl.SSLContext) -> None:
        sslobj.context = self.current

    def reload(self) -> None:
        """Raises (and keeps the old context) when the new files are unusable."""
        self.current = build_context(self.cert, self.key)
