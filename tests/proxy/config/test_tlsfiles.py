"""The TLS loader serve and check-config share: every refusal names the key, the file and the cause.

Before, ``serve`` stopped with ``[SSL] PEM lib (_ssl.c:3926)`` for a key file
that held the certificate, and an encrypted key made OpenSSL ask for a
passphrase on the terminal.
"""

from __future__ import annotations

import contextlib
import ssl
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from proxy.config import tlsfiles
from proxy.config.tlsfiles import EXAMPLE_CERT_SHA256, TLSFileError, leaf_certificate, load_cert_chain
from proxy.server.tls import build_context

ROOT = Path(__file__).resolve().parents[3]
NOT_AFTER = datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def pair(tmp_path: Path, ca: trustme.CA) -> tuple[Path, Path]:
    """A good chain (leaf first, then the CA) and its key."""
    leaf = ca.issue_cert("localhost", not_after=NOT_AFTER)
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
    key.write_bytes(leaf.private_key_pem.bytes())
    return cert, key


def refusal(cert: Path, key: Path) -> str:
    with pytest.raises(TLSFileError) as info:
        load_cert_chain(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), cert, key)
    message = str(info.value)
    assert "PEM lib" not in message and "_ssl.c" not in message
    return message


def encrypt(key: Path, fmt: serialization.PrivateFormat) -> None:
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    key.write_bytes(private.private_bytes(serialization.Encoding.PEM, fmt,
                                          serialization.BestAvailableEncryption(b"secret")))


def test_a_good_pair_loads_and_the_context_serves_it(pair: tuple[Path, Path], ca: trustme.CA) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    load_cert_chain(server_ctx, *pair)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    wires = ssl.MemoryBIO(), ssl.MemoryBIO()  # client -> server, server -> client
    client = client_ctx.wrap_bio(wires[1], wires[0], server_hostname="localhost")
    server = server_ctx.wrap_bio(wires[0], wires[1], server_side=True)
    for _ in range(10):  # a handshake in memory: a few round trips
        for side in (client, server):
            with contextlib.suppress(ssl.SSLWantReadError):
                side.do_handshake()
    assert client.getpeercert()["subjectAltName"] == (("DNS", "localhost"),)


def test_a_key_file_that_holds_the_certificate(pair: tuple[Path, Path]) -> None:
    cert, _ = pair
    assert refusal(cert, cert) == f"tls.key {cert}: not a private key (it holds a certificate)"


def test_cert_and_key_swapped(pair: tuple[Path, Path]) -> None:
    cert, key = pair
    assert refusal(key, cert).startswith(f"tls.cert {key}: not a certificate (it holds a private key)")


def test_a_key_of_another_certificate(pair: tuple[Path, Path], ca: trustme.CA, tmp_path: Path) -> None:
    cert, _ = pair
    other = tmp_path / "other.key"
    other.write_bytes(ca.issue_cert("localhost").private_key_pem.bytes())
    assert refusal(cert, other).startswith(f"tls.key {other}: does not match tls.cert {cert}")


def test_a_chain_with_the_ca_first_is_named_as_the_cause(pair: tuple[Path, Path], ca: trustme.CA) -> None:
    cert, key = pair
    cert.write_bytes(ca.cert_pem.bytes() + cert.read_bytes())
    message = refusal(cert, key)
    assert "does not match tls.cert" in message and "must start with the server's own certificate" in message


@pytest.mark.parametrize("fmt", [serialization.PrivateFormat.PKCS8, serialization.PrivateFormat.TraditionalOpenSSL])
def test_encrypted_keys_are_refused_without_a_prompt(pair: tuple[Path, Path], fmt: serialization.PrivateFormat) -> None:
    cert, key = pair
    encrypt(key, fmt)
    message = refusal(cert, key)
    assert message.startswith(f"tls.key {key}: encrypted keys are not supported")
    assert f"openssl pkey -in {key}" in message


def test_an_encrypted_key_the_precheck_misses_still_never_prompts(pair: tuple[Path, Path],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    # OpenSSL asks the password callback; ours refuses instead of reading the terminal
    cert, key = pair
    encrypt(key, serialization.PrivateFormat.PKCS8)
    monkeypatch.setattr(tlsfiles, "_precheck_key", lambda path, data: None)
    assert "encrypted keys are not supported" in refusal(cert, key)


def test_missing_empty_der_and_damaged_files(pair: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = pair
    missing = tmp_path / "nope.crt"
    assert refusal(missing, key) == f"tls.cert {missing}: No such file or directory"
    empty = tmp_path / "empty.key"
    empty.write_text("")
    assert refusal(cert, empty) == f"tls.key {empty}: the file is empty"
    der = tmp_path / "server.der"
    der.write_bytes(ssl.PEM_cert_to_DER_cert(cert.read_text().split("-----END CERTIFICATE-----")[0]
                                             + "-----END CERTIFICATE-----\n"))
    assert refusal(der, key).startswith(f"tls.cert {der}: a DER (binary) certificate; PEM is needed")
    broken_key = tmp_path / "broken.key"
    broken_key.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    assert refusal(cert, broken_key).startswith(f"tls.key {broken_key}: the private key is damaged")
    broken_cert = tmp_path / "broken.crt"
    broken_cert.write_text("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert refusal(broken_cert, key).startswith(f"tls.cert {broken_cert}: the certificate is damaged")


def test_serve_builds_its_context_with_the_same_loader_and_words(pair: tuple[Path, Path]) -> None:
    cert, _ = pair
    with pytest.raises(ValueError) as info:
        build_context(cert, cert)
    assert str(info.value) == f"tls.key {cert}: not a private key (it holds a certificate)"


def test_the_leaf_is_the_first_certificate_with_its_dates(pair: tuple[Path, Path]) -> None:
    leaf = leaf_certificate(pair[0])
    assert leaf is not None and leaf.not_after == NOT_AFTER and leaf.not_before < datetime.now(UTC)
    assert leaf.sha256 != EXAMPLE_CERT_SHA256


def test_the_example_certificate_is_recognised_by_its_fingerprint() -> None:
    leaf = leaf_certificate(ROOT / "certs-example" / "server.crt")
    assert leaf is not None and leaf.sha256 == EXAMPLE_CERT_SHA256


def test_generalized_time_after_2049_is_read(tmp_path: Path, ca: trustme.CA) -> None:
    far = datetime(2051, 1, 2, 3, 4, 5, tzinfo=UTC)  # RFC 5280: GeneralizedTime from 2050 on
    cert = tmp_path / "far.crt"
    ca.issue_cert("localhost", not_after=far).cert_chain_pems[0].write_to_path(str(cert))
    leaf = leaf_certificate(cert)
    assert leaf is not None and leaf.not_after == far

