"""Offline OCI image layouts for push/pull tests.

No network is available, so test images are generated: random-content
layers (incompressible, so byte counts are real) packed as gzip tars, with a
correct config (diff_ids = sha256 of the uncompressed tar), manifest,
index.json and oci-layout. skopeo reads it as ``oci:DIR:TAG``.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"


@dataclass(frozen=True)
class Blob:
    digest: str
    size: int
    media_type: str


@dataclass(frozen=True)
class OciImage:
    """An image written as an OCI layout directory."""

    path: Path
    tag: str
    manifest: Blob
    config: Blob
    layers: tuple[Blob, ...]
    diff_ids: tuple[str, ...]

    @property
    def ref(self) -> str:
        """The skopeo source reference ``oci:DIR:TAG``."""
        return f"oci:{self.path}:{self.tag}"

    @property
    def digest(self) -> str:
        """The manifest digest a registry must report after a push."""
        return self.manifest.digest

    @property
    def total_layer_bytes(self) -> int:
        return sum(layer.size for layer in self.layers)


class _HashingWriter(io.RawIOBase):
    """Write-through file wrapper that hashes and counts what passes."""

    def __init__(self, target: BinaryIO) -> None:
        self._target = target
        self.sha = hashlib.sha256()
        self.size = 0

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.sha.update(data)
        self.size += len(data)
        self._target.write(data)
        return len(data)


class _RandomReader(io.RawIOBase):
    """``size`` random bytes produced on demand, so huge files never sit in RAM."""

    def __init__(self, size: int, rng: random.Random | None) -> None:
        self._left = size
        self._rng = rng

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:  # type: ignore[override]
        if n < 0 or n > self._left:
            n = self._left
        self._left -= n
        return self._rng.randbytes(n) if self._rng is not None else os.urandom(n)


def _store(blobs_dir: Path, data: bytes, media_type: str) -> Blob:
    hexd = hashlib.sha256(data).hexdigest()
    (blobs_dir / hexd).write_bytes(data)
    return Blob(digest=f"sha256:{hexd}", size=len(data), media_type=media_type)


def _write_layer(
    blobs_dir: Path, index: int, files: int, file_size: int, rng: random.Random | None
) -> tuple[Blob, str]:
    """Stream one gzip tar layer to disk, hashing both compressed and raw forms."""
    tmp = blobs_dir / f".layer-{index}.tmp"
    with tmp.open("wb") as raw_fh:
        compressed = _HashingWriter(raw_fh)
        with gzip.GzipFile(fileobj=compressed, mode="wb", compresslevel=1, mtime=0) as gz:
            uncompressed = _HashingWriter(gz)  # type: ignore[arg-type]
            with tarfile.open(fileobj=uncompressed, mode="w|", format=tarfile.PAX_FORMAT) as tar:
                folder = tarfile.TarInfo(f"layer{index}")
                folder.type = tarfile.DIRTYPE
                folder.mode = 0o755
                tar.addfile(folder)
                for number in range(files):
                    info = tarfile.TarInfo(f"layer{index}/file{number}.bin")
                    info.size = file_size
                    info.mode = 0o644
                    tar.addfile(info, _RandomReader(file_size, rng))  # type: ignore[arg-type]
    hexd = compressed.sha.hexdigest()
    tmp.rename(blobs_dir / hexd)
    blob = Blob(digest=f"sha256:{hexd}", size=compressed.size, media_type=OCI_LAYER_GZIP)
    return blob, f"sha256:{uncompressed.sha.hexdigest()}"


def write_oci_image(
    path: Path,
    *,
    tag: str = "latest",
    layers: int = 2,
    files_per_layer: int = 3,
    file_size: int = 64 * 1024,
    seed: int | None = None,
) -> OciImage:
    """Write a fresh OCI layout to ``path`` and describe it.

    Without ``seed`` every call yields new random blobs, so a test never
    benefits from blobs another test already pushed (cross-mount, skip).
    """
    rng = random.Random(seed) if seed is not None else None
    blobs_dir = path / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    (path / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))

    layer_blobs: list[Blob] = []
    diff_ids: list[str] = []
    for index in range(layers):
        blob, diff_id = _write_layer(blobs_dir, index, files_per_layer, file_size, rng)
        layer_blobs.append(blob)
        diff_ids.append(diff_id)

    nonce = (rng.randbytes(8) if rng is not None else os.urandom(8)).hex()
    config = {
        "created": "2024-01-01T00:00:00Z",
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin"], "Labels": {"test.nonce": nonce}},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": f"layer {i}"} for i in range(layers)],
    }
    config_blob = _store(blobs_dir, json.dumps(config, sort_keys=True).encode(), OCI_CONFIG)

    def descriptor(blob: Blob) -> dict[str, object]:
        return {"mediaType": blob.media_type, "digest": blob.digest, "size": blob.size}

    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config_blob),
        "layers": [descriptor(blob) for blob in layer_blobs],
    }
    manifest_blob = _store(blobs_dir, json.dumps(manifest, sort_keys=True).encode(), OCI_MANIFEST)

    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{**descriptor(manifest_blob), "annotations": {"org.opencontainers.image.ref.name": tag}}],
    }
    (path / "index.json").write_text(json.dumps(index, sort_keys=True))
    return OciImage(
        path=path,
        tag=tag,
        manifest=manifest_blob,
        config=config_blob,
        layers=tuple(layer_blobs),
        diff_ids=tuple(diff_ids),
    )


def to_docker_archive(image: OciImage, archive: Path, name: str, timeout: float = 300) -> Path:
    """Convert the layout into a ``docker load``-able tarball tagged ``name:tag``.

    Uses skopeo so the archive is exactly what the real tooling produces.
    """
    archive.parent.mkdir(parents=True, exist_ok=True)
    archive.unlink(missing_ok=True)
    subprocess.run(
        ["skopeo", "copy", "--quiet", image.ref, f"docker-archive:{archive}:{name}:{image.tag}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return archive
