"""A raw HTTP(S) client for tests: exact methods, repeated headers, streamed bodies.

``http.client`` is used on purpose: it sends what the test says (lowercase
methods, duplicate headers, chunked bodies) where higher-level clients would
normalise the request.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit


@dataclass
class Reply:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = self.all(name)
        return values[0] if values else None

    def all(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> dict:
        import json

        return json.loads(self.body)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Client:
    def __init__(self, base_url: str, ca_cert: Path | None = None, timeout: float = 60) -> None:
        parts = urlsplit(base_url)
        self.scheme = parts.scheme
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.timeout = timeout
        self.ctx = ssl.create_default_context(cafile=str(ca_cert)) if ca_cert else None

    def connect(self) -> http.client.HTTPConnection:
        if self.scheme == "https":
            return http.client.HTTPSConnection(self.host, self.port, context=self.ctx, timeout=self.timeout)
        return http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)

    def request(
        self,
        method: str,
        path: str,
        headers: Iterable[tuple[str, str]] = (),
        body: bytes | Iterable[bytes] | None = None,
        chunked: bool = False,
    ) -> Reply:
        conn = self.connect()
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            if chunked:
                conn.putheader("Transfer-Encoding", "chunked")
            elif isinstance(body, bytes):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            if body is not None:
                chunks = [body] if isinstance(body, bytes) else body
                for chunk in chunks:
                    conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                if chunked:
                    conn.send(b"0\r\n\r\n")
            resp = conn.getresponse()
            data = resp.read() if method != "HEAD" else b""
            return Reply(resp.status, resp.getheaders(), data)
        finally:
            conn.close()

    def stream_download(self, path: str, headers: Iterable[tuple[str, str]] = ()) -> tuple[int, str, int]:
        """GET without keeping the body: returns (status, sha256 hex, size)."""
        conn = self.connect()
        try:
            conn.putrequest("GET", path, skip_accept_encoding=True)
            for name, value in headers:
                conn.putheader(name, value)
            conn.endheaders()
            resp = conn.getresponse()
            digest = hashlib.sha256()
            size = 0
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
            return resp.status, digest.hexdigest(), size
        finally:
            conn.close()


def pattern_stream(size: int, block: int = 1 << 20, seed: bytes = b"x") -> Iterator[bytes]:
    """Deterministic incompressible-ish bytes without holding them in memory."""
    base = hashlib.sha256(seed).digest() * (block // 32)
    sent = 0
    counter = 0
    while sent < size:
        n = min(block, size - sent)
        head = counter.to_bytes(8, "big")
        yield (head + base[8:])[:n]
        sent += n
        counter += 1


def stream_digest(size: int, seed: bytes = b"x") -> str:
    digest = hashlib.sha256()
    for chunk in pattern_stream(size, seed=seed):
        digest.update(chunk)
    return "sha256:" + digest.hexdigest()


def upload_blob(client: Client, repo: str, auth: str, chunks: Iterable[bytes], digest: str,
                chunked: bool = True) -> Reply:
    """POST + (chunked) PATCH + PUT ?digest=, following Location as a client must."""
    start = client.request("POST", f"/v2/{repo}/blobs/uploads/", [("Authorization", auth)], body=b"")
    assert start.status == 202, (start.status, start.body)
    location = start.header("Location")
    assert location is not None
    path = _path_of(location)
    patch = client.request("PATCH", path, [("Authorization", auth),
                                            ("Content-Type", "application/octet-stream")],
                           body=chunks if chunked else b"".join(chunks), chunked=chunked)
    assert patch.status == 202, (patch.status, patch.body)
    path = _path_of(patch.header("Location") or "")
    sep = "&" if "?" in path else "?"
    return client.request("PUT", f"{path}{sep}digest={digest.replace(':', '%3A')}",
                          [("Authorization", auth)], body=b"")


def _path_of(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def put_blob(client: Client, repo: str, data: bytes, auth: str) -> str:
    """POST, then one monolithic PUT with the whole body (registry 2.8 has no single-POST upload)."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    start = client.request("POST", f"/v2/{repo}/blobs/uploads/", [("Authorization", auth)], body=b"")
    assert start.status == 202, start.body
    location = urlsplit(start.header("Location") or "")
    reply = client.request("PUT", f"{location.path}?{location.query}&digest={digest.replace(':', '%3A')}",
                           [("Authorization", auth), ("Content-Type", "application/octet-stream")], body=data)
    assert reply.status == 201, reply.body
    return digest
