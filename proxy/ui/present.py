"""Escaping, sorting and formatting for the web catalog (pure: no I/O, no aiohttp).

Everything the catalog shows was written by whoever pushed it (tags, labels,
env, history, repository names), so it is hostile. Pages are built from
:class:`Html` values only: :func:`fmt` escapes every argument that is not
already :class:`Html` (``html.escape`` with quotes, so the same text is safe
in element content and in double-quoted attributes), and the templates never
concatenate raw strings. A mistake then shows up as visible ``&lt;`` on a
page, not as a script running in it.

URLs are never taken from content, with one exception: a label whose value
is an ``http(s)`` URL may become a link (:func:`external_link`); anything
else (``javascript:``, ``data:``, relative paths) stays text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from urllib.parse import urlsplit

__all__ = [
    "Html",
    "esc",
    "external_link",
    "fmt",
    "human_size",
    "join",
    "natural_key",
    "parse_created",
    "safe_next",
    "short_digest",
    "sort_tags",
    "squash",
]

_DIGITS = re.compile(r"(\d+)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
DISPLAY_MAX = 4096  # characters of one pushed string shown on a page; the rest is cut (and said so)


class Html(str):
    """Text that is already safe to put in a page: only ever made by :func:`esc`, :func:`fmt`, :func:`join`."""

    __slots__ = ()


def esc(value: object) -> Html:
    """``value`` as page text: escaped unless it already is :class:`Html`."""
    if isinstance(value, Html):
        return value
    return Html(html.escape(str(value), quote=True))


def fmt(template: str, *args: object, **kwargs: object) -> Html:
    """``template.format`` with every argument escaped; the template itself is trusted markup.

    Substituted values are never re-read as format fields, so a ``{`` in
    content is inert. Attributes in templates are always double-quoted.
    """
    return Html(template.format(*(esc(a) for a in args), **{k: esc(v) for k, v in kwargs.items()}))


def join(parts: Iterable[object], separator: str = "") -> Html:
    return Html(esc(separator).join(esc(p) for p in parts))


def squash(text: str, limit: int = DISPLAY_MAX) -> str:
    """A pushed string cut to ``limit`` characters (a page must not grow with a hostile 4 MB label)."""
    return text if len(text) <= limit else text[:limit] + f"… ({len(text) - limit} more characters)"


def natural_key(tag: str) -> tuple[int, tuple[str | int, ...], str]:
    """Sort key people expect: ``latest`` first, then ``1.9`` < ``1.10`` < ``2``, case-insensitively.

    ``re.split`` with a capturing group alternates text and digit runs and
    always starts with text, so two keys compare text with text and numbers
    with numbers at every position. The raw tag breaks ties (``01`` vs ``1``).
    """
    parts = _DIGITS.split(tag)
    key = tuple(int(p) if i % 2 else p.lower() for i, p in enumerate(parts))
    return (0 if tag == "latest" else 1, key, tag)


def sort_tags(tags: Iterable[str]) -> list[str]:
    return sorted(tags, key=natural_key)


def human_size(size: int | None) -> str:
    """Decimal units as ``docker images`` prints them (``3.1 MB``); ``—`` when unknown."""
    if size is None or size < 0:
        return "—"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{size} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def short_digest(digest: str) -> str:
    """``sha256:0123456789ab``: enough to tell digests apart on a page (the full one is in ``title``)."""
    algorithm, _, encoded = digest.partition(":")
    return f"{algorithm}:{encoded[:12]}" if encoded else digest


def parse_created(text: object) -> datetime | None:
    """An image config's ``created`` (RFC 3339, Go writes up to nanoseconds) in UTC; None if unreadable."""
    if not isinstance(text, str) or len(text) > 64:
        return None
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if match is None:
        return None
    stamp, fraction, zone = match.groups()
    micro = (fraction or "0")[:6].ljust(6, "0")
    try:
        when = datetime.fromisoformat(f"{stamp}.{micro}{'+00:00' if zone == 'Z' else zone}")
    except ValueError:
        return None
    return when.astimezone(UTC)


def format_time(when: datetime | None) -> tuple[str, str]:
    """(machine form for ``<time datetime>``, what people read); empty strings when unknown."""
    if when is None:
        return "", "—"
    return when.strftime("%Y-%m-%dT%H:%M:%SZ"), when.strftime("%Y-%m-%d %H:%M UTC")


def external_link(value: str) -> str | None:
    """``value`` when it is a plain ``http(s)`` URL worth linking; None for anything else.

    ``javascript:``, ``data:``, scheme-relative ``//host`` and anything with
    whitespace or control characters stay text: a label is data, not a link
    the registry vouches for (links also get ``rel=noopener noreferrer``).
    """
    if len(value) > 2048 or _CONTROL.search(value) or any(c in value for c in " \\\"'<>`"):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc or "@" in parts.netloc:
        return None
    return value


def safe_next(target: str | None, base: str) -> str:
    """Where to go after signing in: a path inside the catalog, else the catalog itself.

    Only a plain absolute path under ``base`` is kept; a full URL, a
    scheme-relative ``//evil``, a backslash (``/\\evil``, which browsers read
    as ``//evil``), control characters or dot segments send the user to
    ``base`` instead: no open redirect.
    """
    if not target or len(target) > 2048 or _CONTROL.search(target) or "\\" in target:
        return base
    if not target.startswith(base) or target.startswith("//"):
        return base
    try:
        parts = urlsplit(target)
    except ValueError:
        return base
    if parts.scheme or parts.netloc or parts.fragment or "/../" in parts.path or "/./" in parts.path:
        return base
    if "%" in parts.path or "//" in parts.path:
        return base
    return target
