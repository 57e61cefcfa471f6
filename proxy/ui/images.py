"""Manifests, indexes and image configs read defensively (pure: bytes in, frozen summaries out).

What a pusher uploads is only loosely checked by the registry: a label may
be a number, ``Env`` a string, a size negative, a platform missing. Every
field is read with a type check and a wrong one is simply absent, so a
hostile image shows as an image with less information, never as an error
page (or worse, as something the templates did not expect).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from auth.names import valid_digest
from proxy.ui.present import squash

__all__ = [
    "INDEX_TYPES",
    "MANIFEST_ACCEPT",
    "Descriptor",
    "History",
    "ImageConfig",
    "Manifest",
    "ManifestError",
    "parse_config",
    "parse_manifest",
]

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
INDEX_TYPES = frozenset({OCI_INDEX, DOCKER_LIST})
MANIFEST_ACCEPT = ", ".join((OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST))
MAX_ITEMS = 1000  # layers, platforms, env entries, labels, history steps shown per image


class ManifestError(ValueError):
    """Not a manifest this page can read (not JSON, or not an object)."""


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int | None
    platform: str | None = None  # os/architecture[/variant], for an index's entries

    @property
    def attestation(self) -> bool:
        """buildx's provenance entries (``unknown/unknown``): not a platform anyone pulls."""
        return self.platform == "unknown/unknown"


@dataclass(frozen=True)
class Manifest:
    digest: str
    media_type: str
    size: int  # of the manifest itself
    config: Descriptor | None = None
    layers: tuple[Descriptor, ...] = ()
    children: tuple[Descriptor, ...] = ()  # an index's manifests

    @property
    def is_index(self) -> bool:
        return self.media_type in INDEX_TYPES or bool(self.children)

    @property
    def compressed_size(self) -> int | None:
        """Config plus layers, what a pull downloads; None when a size is missing or for an index."""
        if self.is_index or self.config is None or self.config.size is None:
            return None
        sizes = [d.size for d in self.layers]
        if any(s is None for s in sizes):
            return None
        return self.config.size + sum(s for s in sizes if s is not None)

    @property
    def platforms(self) -> tuple[Descriptor, ...]:
        """An index's image entries, attestations left out."""
        return tuple(c for c in self.children if not c.attestation)


@dataclass(frozen=True)
class History:
    created: str | None
    created_by: str
    comment: str
    empty_layer: bool


@dataclass(frozen=True)
class ImageConfig:
    created: str | None = None
    platform: str | None = None
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    env: tuple[str, ...] = ()
    ports: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    history: tuple[History, ...] = ()
    user: str = ""
    workdir: str = ""


def _str(value: object) -> str | None:
    return squash(value) if isinstance(value, str) else None


def _size(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _platform(value: object) -> str | None:
    if not isinstance(value, dict):
        return None
    os_, arch, variant = _str(value.get("os")), _str(value.get("architecture")), _str(value.get("variant"))
    if not os_ or not arch:
        return None
    return f"{os_}/{arch}/{variant}" if variant else f"{os_}/{arch}"


def _descriptor(value: object) -> Descriptor | None:
    if not isinstance(value, dict):
        return None
    digest = value.get("digest")
    if not isinstance(digest, str) or not valid_digest(digest):
        return None
    return Descriptor(_str(value.get("mediaType")) or "", digest, _size(value.get("size")),
                      _platform(value.get("platform")))


def _descriptors(value: object) -> tuple[Descriptor, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(d for d in (_descriptor(v) for v in value[:MAX_ITEMS]) if d is not None)


def _object(body: bytes) -> dict[str, object]:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ManifestError("not JSON") from exc
    if not isinstance(data, dict):
        raise ManifestError("not a JSON object")
    return data


def parse_manifest(body: bytes, digest: str, content_type: str = "") -> Manifest:
    """The manifest or index in ``body`` (its ``mediaType`` field first, then the response's type)."""
    data = _object(body)
    media_type = _str(data.get("mediaType")) or content_type.split(";")[0].strip()
    children = _descriptors(data.get("manifests"))
    return Manifest(digest, media_type, len(body), config=_descriptor(data.get("config")),
                    layers=_descriptors(data.get("layers")), children=children)


def _strings(value: object) -> tuple[str, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(s for s in (_str(v) for v in value[:MAX_ITEMS]) if s is not None)


def _history(value: object) -> tuple[History, ...]:
    if not isinstance(value, list):
        return ()
    steps = []
    for step in value[:MAX_ITEMS]:
        if isinstance(step, dict):
            steps.append(History(_str(step.get("created")), _str(step.get("created_by")) or "",
                                 _str(step.get("comment")) or "", step.get("empty_layer") is True))
    return tuple(steps)


def parse_config(body: bytes) -> ImageConfig:
    """The parts of an image config a person looks at; ManifestError when it is not a JSON object."""
    data = _object(body)
    inner = data.get("config")
    cfg: dict[str, object] = inner if isinstance(inner, dict) else {}
    labels = cfg.get("Labels")
    label_items = sorted((squash(k), squash(v)) for k, v in labels.items()
                         if isinstance(k, str) and isinstance(v, str)) if isinstance(labels, dict) else []
    ports = cfg.get("ExposedPorts")
    return ImageConfig(
        created=_str(data.get("created")),
        platform=_platform(data),
        entrypoint=_strings(cfg.get("Entrypoint")),
        cmd=_strings(cfg.get("Cmd")),
        env=_strings(cfg.get("Env")) or (),
        ports=tuple(sorted(squash(p) for p in ports if isinstance(p, str)))[:MAX_ITEMS]
        if isinstance(ports, dict) else (),
        labels=tuple(label_items[:MAX_ITEMS]),
        history=_history(data.get("history")),
        user=_str(cfg.get("User")) or "",
        workdir=_str(cfg.get("WorkingDir")) or "",
    )
