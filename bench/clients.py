"""Load generators and transfer clients: curl, hey, wrk (parsed into small dataclasses).

Verification: curl always verifies against the bench CA (--cacert). hey 0.1.4 has no CA
option and sets InsecureSkipVerify itself; wrk 4.1 does not verify certificates either.
Both still do a full TLS handshake and encrypt, so the server's cost is the same.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from bench.fixtures import Blob


class ClientError(RuntimeError):
    """A client run failed in a way that makes its numbers meaningless."""


def basic_header(name: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{name}:{password}".encode()).decode()


def _curl(ca: Path, args: list[str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    cmd = ["curl", "-sS", "--cacert", str(ca), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise ClientError(f"curl exit {proc.returncode}: {proc.stderr.strip()[:300]}")
    return proc


@dataclass(frozen=True)
class Transfer:
    bytes: int
    seconds: float

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6


def pull_blob(base: str, repo: str, blob: Blob, ca: Path) -> Transfer:
    """GET a blob with curl -o /dev/null; throughput = size / curl's time_total (incl. TLS setup)."""
    url = f"{base}/v2/{repo}/blobs/{blob.digest}"
    proc = _curl(ca, ["-o", "/dev/null", "-w", "%{http_code} %{size_download} %{time_total}", url])
    code, size, elapsed = proc.stdout.split()
    if code != "200" or int(size) != blob.size:
        raise ClientError(f"pull: HTTP {code}, {size} of {blob.size} bytes")
    return Transfer(blob.size, float(elapsed))


def _follow(base: str, location: str) -> str:
    if not location:
        raise ClientError("no Location header")
    return urllib.parse.urljoin(base + "/", location)


def _with_digest(url: str, digest: str) -> str:
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}digest={urllib.parse.quote(digest)}"


def push_blob(base: str, repo: str, blob: Blob, ca: Path, auth: str | None) -> Transfer:
    """POST + one chunked PATCH (streamed from the file) + PUT ?digest=, following Location.

    Timed end to end, as a client experiences a layer push.
    """
    creds = ["-H", f"Authorization: {auth}"] if auth else []
    out = "%{http_code} %header{location}"
    start = time.perf_counter()
    post = _curl(
        ca, [*creds, "-X", "POST", "-o", "/dev/null", "-w", out, f"{base}/v2/{repo}/blobs/uploads/"]
    ).stdout.split(maxsplit=1)
    if post[0] != "202":
        raise ClientError(f"push: POST answered {post[0]}")
    patch_url = _follow(base, post[1] if len(post) > 1 else "")
    patch = _curl(
        ca,
        [
            *creds,
            "-X",
            "PATCH",
            "-T",
            str(blob.path),
            "-H",
            "Transfer-Encoding: chunked",
            "-H",
            "Content-Type: application/octet-stream",
            "-o",
            "/dev/null",
            "-w",
            out,
            patch_url,
        ],
    ).stdout.split(maxsplit=1)
    if patch[0] != "202":
        raise ClientError(f"push: PATCH answered {patch[0]}")
    put_url = _with_digest(_follow(base, patch[1] if len(patch) > 1 else ""), blob.digest)
    put = _curl(
        ca, [*creds, "-X", "PUT", "-H", "Content-Length: 0", "-o", "/dev/null", "-w", "%{http_code}", put_url]
    ).stdout
    if put != "201":
        raise ClientError(f"push: PUT answered {put}")
    return Transfer(blob.size, time.perf_counter() - start)


def put_manifest(base: str, repo: str, tag: str, manifest: Path, media_type: str, ca: Path, auth: str | None) -> None:
    creds = ["-H", f"Authorization: {auth}"] if auth else []
    code = _curl(
        ca,
        [
            *creds,
            "-X",
            "PUT",
            "-H",
            f"Content-Type: {media_type}",
            "--data-binary",
            f"@{manifest}",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            f"{base}/v2/{repo}/manifests/{tag}",
        ],
        timeout=60,
    ).stdout
    if code != "201":
        raise ClientError(f"manifest PUT answered {code}")


def status_of(url: str, ca: Path, headers: tuple[str, ...] = ()) -> int:
    """Status code of one anonymous GET (the body is discarded)."""
    args = [a for h in headers for a in ("-H", h)]
    return int(_curl(ca, [*args, "-o", "/dev/null", "-w", "%{http_code}", url], timeout=30).stdout)


def head_status(url: str, ca: Path) -> str:
    return _curl(ca, ["-I", "-o", "/dev/null", "-w", "%{http_code}", url], timeout=30).stdout


def challenge(base: str, ca: Path) -> str:
    """The WWW-Authenticate header of an anonymous GET /v2/ ('' if none)."""
    proc = _curl(ca, ["-o", "/dev/null", "-w", "%header{www-authenticate}", f"{base}/v2/"], timeout=30)
    return proc.stdout.strip()


def fetch_token(base: str, ca: Path, user: str, password: str, repo: str) -> str | None:
    """A bearer token from the proxy's token endpoint, or None if it has none."""
    chal = challenge(base, ca)
    if not chal.lower().startswith("bearer"):
        return None
    params = dict(re.findall(r'(\w+)="([^"]*)"', chal))
    realm = params.get("realm") or f"{base}/token"
    query = urllib.parse.urlencode(
        {"service": params.get("service", ""), "scope": f"repository:{repo}:push,pull,delete"}
    )
    proc = _curl(ca, ["-u", f"{user}:{password}", "-w", "\n%{http_code}", f"{realm}?{query}"], timeout=60)
    body, _, code = proc.stdout.rpartition("\n")
    if code != "200":
        return None
    data = json.loads(body)
    token = data.get("token") or data.get("access_token")
    return str(token) if token else None
