"""What each catalog page needs from the registry, gathered concurrently (and bounded by the reader).

A repository page resolves each shown tag with one ``HEAD`` (tags move),
then needs, per distinct digest, the manifest and the config (or, for an
index, each platform's manifest and config): those come from the cache
after the first view, so a page of 100 tags costs 100 ``HEAD`` requests and
nothing else once its digests have been seen.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from proxy.ui.backend import RegistryReader
from proxy.ui.images import ImageConfig, Manifest
from proxy.ui.present import parse_created

__all__ = ["MAX_DELETE_SCAN", "Platform", "Summary", "TagDetail", "TagRow", "tag_detail", "tag_rows", "tags_on"]

MAX_DELETE_SCAN = 2000  # tags resolved to name every tag on a digest before a delete


@dataclass(frozen=True)
class Platform:
    name: str
    digest: str
    size: int | None
    created: datetime | None


@dataclass(frozen=True)
class Summary:
    size: int | None  # config + layers; None for an index (see platforms)
    created: datetime | None  # an index: its newest platform
    platform: str | None  # a single image's os/arch (from its config)
    platforms: tuple[Platform, ...] = ()


@dataclass(frozen=True)
class TagRow:
    tag: str
    digest: str | None  # None: the tag went away between the list and the HEAD
    manifest: Manifest | None
    summary: Summary | None


@dataclass(frozen=True)
class TagDetail:
    tag: str
    manifest: Manifest
    summary: Summary
    image: Manifest | None  # what the details describe: the manifest itself, or the chosen platform's
    config: ImageConfig | None
    chosen: str | None  # the chosen platform's digest, for an index


async def _image(reader: RegistryReader, name: str, manifest: Manifest) -> tuple[ImageConfig | None, Summary]:
    config = await reader.config(name, manifest.config.digest) if manifest.config is not None else None
    created = parse_created(config.created) if config is not None else None
    return config, Summary(manifest.compressed_size, created, config.platform if config is not None else None)


async def summarize(reader: RegistryReader, name: str, manifest: Manifest) -> Summary:
    """Size, creation time and platforms; an index's come from each platform's manifest and config."""
    if not manifest.is_index:
        return (await _image(reader, name, manifest))[1]
    entries = manifest.platforms

    async def one(index: int) -> Platform:
        entry = entries[index]
        child = await reader.manifest(name, entry.digest)
        if child is None or child.is_index:
            return Platform(entry.platform or "unknown", entry.digest, None, None)
        _, summary = await _image(reader, name, child)
        return Platform(entry.platform or summary.platform or "unknown", entry.digest, summary.size,
                        summary.created)

    platforms = await asyncio.gather(*(one(i) for i in range(len(entries))))
    times = [p.created for p in platforms if p.created is not None]
    return Summary(None, max(times) if times else None, None, tuple(platforms))


async def tag_rows(reader: RegistryReader, name: str, tags: Sequence[str]) -> list[TagRow]:
    """One row per tag, in the order given."""
    digests = await asyncio.gather(*(reader.resolve(name, tag) for tag in tags))
    distinct = sorted({d for d in digests if d is not None})

    async def described(digest: str) -> tuple[Manifest | None, Summary | None]:
        manifest = await reader.manifest(name, digest)
        return manifest, (await summarize(reader, name, manifest) if manifest is not None else None)

    found = dict(zip(distinct, await asyncio.gather(*(described(d) for d in distinct)), strict=True))
    rows = []
    for tag, digest in zip(tags, digests, strict=True):
        manifest, summary = found[digest] if digest is not None else (None, None)
        rows.append(TagRow(tag, digest, manifest, summary))
    return rows


async def tag_detail(reader: RegistryReader, name: str, tag: str, platform: str | None) -> TagDetail | None:
    """The tag page's data; ``platform`` picks an index's entry by digest (default: the first)."""
    digest = await reader.resolve(name, tag)
    manifest = await reader.manifest(name, digest) if digest is not None else None
    if manifest is None:
        return None
    summary = await summarize(reader, name, manifest)
    image: Manifest | None = manifest
    chosen = None
    if manifest.is_index:
        choices = [p.digest for p in summary.platforms]
        chosen = platform if platform in choices else (choices[0] if choices else None)
        image = await reader.manifest(name, chosen) if chosen is not None else None
    config = None
    if image is not None and not image.is_index and image.config is not None:
        config = await reader.config(name, image.config.digest)
    return TagDetail(tag, manifest, summary, image, config, chosen)


async def tags_on(reader: RegistryReader, name: str, digest: str, tags: Sequence[str]) -> tuple[list[str], bool]:
    """Every tag pointing at ``digest`` (what a delete takes with it); False when not all could be checked."""
    looked = list(tags[:MAX_DELETE_SCAN])
    digests = await asyncio.gather(*(reader.resolve(name, tag) for tag in looked))
    return [t for t, d in zip(looked, digests, strict=True) if d == digest], len(looked) == len(tags)
