"""Loading ``tls.cert`` and ``tls.key``: the one loader ``serve`` and ``check-config`` both call.

Why not ``SSLContext.load_cert_chain`` alone: for the commonest mistakes it
says ``[SSL] PEM lib (_ssl.c:3926)``, which names neither the file nor the
cause, and for an encrypted key it asks for a passphrase on the terminal (a
service has none, so it hangs or fails at an unattended start). Here each file
is looked at first (readable? which PEM blocks does it hold?) and OpenSSL's
refusals are translated, so the message names the key, the file and the cause:
``tls.key /etc/x/server.key: not a private key (it holds a certificate)``.
``check-config`` calls the same function, so it fails on exactly the files
``serve`` refuses, with the same sentence.

Pure stdlib (``ssl``, no aiohttp): ``check-config`` must not import the server.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["EXAMPLE_CERT_SHA256", "Leaf", "TLSFileError", "leaf_certificate", "load_cert_chain"]

# certs-example/server.crt (its key is public): check-config warns when it is in use, wherever it was copied
EXAMPLE_CERT_SHA256 = "67eb76c6a456c30a027a5ffc61687e1c65cc11e6a1172cea4266c312e8cc7e79"

_CERT_BLOCK = re.compile(rb"-----BEGIN (?:TRUSTED |X509 )?CERTIFICATE-----(.*?)-----END", re.S)
_KEY_BEGIN = re.compile(rb"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----")
_ORDER = "tls.cert must start with the server's own certificate, then its intermediates"


class TLSFileError(ValueError):
    """Why a certificate or key cannot be used: names the config key, the file and the cause."""


@dataclass(frozen=True)
class Leaf:
    """The first certificate in ``tls.cert``: the one served, whose validity clients check."""

    sha256: str  # of the DER: identifies the example certificate wherever it was copied
    not_before: datetime
    not_after: datetime


def _read(label: str, path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TLSFileError(f"{label} {path}: {exc.strerror or exc}") from None


def _precheck_cert(path: Path, data: bytes) -> None:
    if _CERT_BLOCK.search(data):
        return
    if not data.strip():
        raise TLSFileError(f"tls.cert {path}: the file is empty")
    if _KEY_BEGIN.search(data):
        raise TLSFileError(f"tls.cert {path}: not a certificate (it holds a private key): swap tls.cert and tls.key?")
    if data[:1] == b"\x30":
        raise TLSFileError(f"tls.cert {path}: a DER (binary) certificate; PEM is needed: "
                           f"openssl x509 -inform der -in {path} -out {path}.pem")
    raise TLSFileError(f"tls.cert {path}: no PEM certificate in it (-----BEGIN CERTIFICATE-----)")


def _precheck_key(path: Path, data: bytes) -> None:
    found = _KEY_BEGIN.search(data)
    if found is not None and found.group(1) == b"OPENSSH ":
        raise TLSFileError(f"tls.key {path}: an OpenSSH key, not a TLS private key")
    if found is not None and (found.group(1) == b"ENCRYPTED " or b"Proc-Type: 4,ENCRYPTED" in data):
        raise _encrypted(path)
    if found is not None:
        return
    if not data.strip():
        raise TLSFileError(f"tls.key {path}: the file is empty")
    if _CERT_BLOCK.search(data):
        raise TLSFileError(f"tls.key {path}: not a private key (it holds a certificate)")
    raise TLSFileError(f"tls.key {path}: no PEM private key in it (-----BEGIN PRIVATE KEY-----)")


def _encrypted(path: Path) -> TLSFileError:
    return TLSFileError(f"tls.key {path}: encrypted keys are not supported (nobody is there to type the "
                        f"passphrase at start-up); decrypt it into a file only the proxy's user can read: "
                        f"openssl pkey -in {path} -out {path}.plain")


def load_cert_chain(ctx: ssl.SSLContext, cert: Path, key: Path) -> None:
    """``ctx.load_cert_chain(cert, key)``, raising :class:`TLSFileError` (a ValueError) with a readable cause."""
    _precheck_cert(cert, _read("tls.cert", cert))
    _precheck_key(key, _read("tls.key", key))

    def no_passphrase() -> str:
        raise _encrypted(key)  # never a terminal prompt, whatever encryption marker we did not know

    try:
        ctx.load_cert_chain(str(cert), str(key), password=no_passphrase)
    except ssl.SSLError as exc:
        raise _translate(exc, cert, key) from None
    except OSError as exc:  # the file went away between the precheck and the load
        raise TLSFileError(f"tls.cert {cert} / tls.key {key}: {exc.strerror or exc}") from None


def _translate(exc: ssl.SSLError, cert: Path, key: Path) -> TLSFileError:
    """OpenSSL's refusal in words: which of the two files it is about, and why."""
    reason = exc.reason or exc.library or "refused"
    if exc.reason == "KEY_VALUES_MISMATCH":
        return TLSFileError(f"tls.key {key}: does not match tls.cert {cert} ({_ORDER})")
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_verify_locations(cafile=str(cert))
    except ssl.SSLError:
        return TLSFileError(f"tls.cert {cert}: the certificate is damaged or not one OpenSSL can read ({reason})")
    return TLSFileError(f"tls.key {key}: the private key is damaged or not one OpenSSL can read ({reason})")


def _tlv(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of content, end of content) of the DER element at ``pos``."""
    tag, first = der[pos], der[pos + 1]
    if first < 0x80:
        return tag, pos + 2, pos + 2 + first
    count = first & 0x7F
    start = pos + 2 + count
    return tag, start, start + int.from_bytes(der[pos + 2:start], "big")


def _time(der: bytes, pos: int) -> tuple[datetime, int]:
    tag, start, end = _tlv(der, pos)
    text = der[start:end].decode("ascii")
    fmt = "%y%m%d%H%M%SZ" if tag == 0x17 else "%Y%m%d%H%M%SZ"  # UTCTime, else GeneralizedTime
    return datetime.strptime(text, fmt).replace(tzinfo=UTC), end


def _validity(der: bytes) -> tuple[datetime, datetime]:
    """notBefore and notAfter: Certificate > TBSCertificate > [version], serial, signature, issuer, validity."""
    _, tbs, _ = _tlv(der, 0)
    _, pos, _ = _tlv(der, tbs)
    if der[pos] == 0xA0:  # explicit version
        pos = _tlv(der, pos)[2]
    for _ in range(3):  # serialNumber, signature, issuer
        pos = _tlv(der, pos)[2]
    _, pos, _ = _tlv(der, pos)
    not_before, pos = _time(der, pos)
    return not_before, _time(der, pos)[0]


def leaf_certificate(cert: Path) -> Leaf | None:
    """The first certificate of ``cert`` (call after :func:`load_cert_chain` accepted it); None if unreadable."""
    try:
        found = _CERT_BLOCK.search(cert.read_bytes())
        if found is None:
            return None
        der = base64.b64decode(b"".join(found.group(1).split()))
        not_before, not_after = _validity(der)
    except (OSError, ValueError, IndexError, binascii.Error):
        return None
    return Leaf(hashlib.sha256(der).hexdigest(), not_before, not_after)
