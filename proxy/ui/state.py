"""What the catalog keeps for the life of the app: its path, its digest cache, its static files.

Static files are read once at start-up and served from memory under names
that carry a hash of their content (``ui.1a2b3c4d5e.css``), so they can be
cached by browsers for a year (``immutable``): a new release changes the
name, never the bytes behind an old one. Nothing is loaded from anywhere
else: no CDN, no web fonts, which is also what the CSP allows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from proxy.ui.cache import ByteLRU

__all__ = ["STATIC_DIR", "UI_STATE", "Asset", "Assets", "UIState", "load_assets"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".svg": "image/svg+xml"}


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


@dataclass(frozen=True)
class Assets:
    files: dict[str, Asset]  # by served name (with its hash)
    css_url: str
    js_url: str
    icon_url: str

    @property
    def weight(self) -> int:
        """Bytes of CSS and JS a first visit downloads (the page-weight budget counts them)."""
        return sum(len(a.body) for name, a in self.files.items() if name.endswith((".css", ".js")))


def load_assets(base: str, folder: Path = STATIC_DIR) -> Assets:
    files: dict[str, Asset] = {}
    urls: dict[str, str] = {}
    for source in ("ui.css", "ui.js", "icon.svg"):
        body = (folder / source).read_bytes()
        digest = hashlib.sha256(body).hexdigest()[:10]
        stem, suffix = source.rsplit(".", 1)
        served = f"{stem}.{digest}.{suffix}"
        files[served] = Asset(body, TYPES["." + suffix], f'"{digest}"')
        urls[source] = f"{base}static/{served}"
    return Assets(files, urls["ui.css"], urls["ui.js"], urls["icon.svg"])


@dataclass
class UIState:
    base: str  # ui.path (restart-only, like the routes it names)
    assets: Assets
    version: str = ""  # shown in every footer; looked up once (importlib.metadata costs ~0.3 ms a call)
    cache: ByteLRU = field(default_factory=ByteLRU)


UI_STATE: web.AppKey[UIState] = web.AppKey("ui_state")
