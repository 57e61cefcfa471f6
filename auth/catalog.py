"""Paging a catalog that is filtered by the caller's pull rights (pure: the transport does the I/O).

``GET /v2/_catalog`` must list only the repositories the caller may pull,
yet keep distribution's paging contract (``n``, ``last``, ``Link``) intact:
a client following ``Link`` must see every visible name exactly once and
never loop. Filtering one backend page is not enough: a page can be mostly
(or wholly) hidden, so :class:`CatalogWalk` asks for further backend pages
until it has ``n`` visible names or the backend is exhausted, and stops
early at a bound (pages and names scanned per client request), so one
request never walks a huge hidden catalog. When it stops early it answers
what it has with a ``Link`` whose ``last`` is the last name *scanned*: the
client's next request resumes exactly there, and ``last`` always advances,
even when the page it ends is empty.

That resume point may be a name the caller must not see, so it is never
written in clear: :class:`CursorSeal` turns it into an opaque ``~...`` token
(encrypted and authenticated with a key derived from the token key) that
only this proxy, or a replica sharing its key, can read back. A name the
caller may see is written as is, exactly as distribution would.

Ordering is the backend's (distribution compares names component-wise, so
``a/b`` sorts before ``a-b``): this module never compares names itself, it
only remembers where the backend's walk got to. It is sans-I/O on purpose:
the property tests drive it against a fake sorted backend, synchronously.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlencode

from auth.errors import ProxyError

__all__ = ["CATALOG_PATH", "CURSOR_MARK", "DEFAULT_N", "MAX_PAGES", "MAX_SCANNED", "CatalogAnswer", "CatalogWalk",
           "CursorSeal", "PageError", "Paging", "catalog_path", "link_header", "parse_page", "parse_paging"]

CATALOG_PATH = "/v2/_catalog"
DEFAULT_N = 100  # distribution's default page size when ``n`` is absent or invalid
MAX_PAGES = 10  # backend requests per client request, at most
MAX_SCANNED = 10_000  # names looked at per client request, at most (checked after each backend page)
_GO_INT = re.compile(r"[+-]?[0-9]{1,19}")  # what Go's strconv.Atoi accepts (range checked below)
_INT64_MAX = 2**63 - 1
CURSOR_MARK = "~"  # starts no repository name (lowercase, digits, ._-/), and URL-encoding leaves it alone
_NONCE = 16
_TAG = 16
_MAX_CURSOR = 1024  # a sealed name of 255 bytes is under 400 characters


class PageError(ValueError):
    """A backend catalog page that is not ``{"repositories": [str, ...]}``."""


@dataclass(frozen=True)
class Paging:
    """The client's ``n`` and ``last`` as distribution 2.8 reads them.

    ``n_given`` says whether ``n`` goes to the backend: a valid ``n`` is passed
    on (so the backend's own ``catalog.maxentries`` check answers ``n`` too
    large with its 400), an absent or invalid one is left out, and the
    backend then uses the same default as :data:`DEFAULT_N`.
    """

    n: int = DEFAULT_N
    last: str | None = None
    n_given: bool = False


@dataclass(frozen=True)
class CursorSeal:
    """Hides a resume point the caller may not see inside an opaque ``last``.

    HMAC-SHA256 as a keyed stream (counter mode) for secrecy, then an HMAC
    tag over nonce and ciphertext: standard constructions, standard library
    only. Integrity is not what protects the catalog (any client may send any
    plain ``last``); the tag makes a stale or garbled cursor a clear 400
    instead of a resume from a random point.
    """

    key: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> CursorSeal:
        """Its own key, derived from the token key: replicas sharing that key read each other's cursors."""
        return cls(hmac.digest(secret, b"registry-auth-proxy catalog cursor", "sha256"))

    def _derive(self, label: bytes) -> bytes:
        return hmac.digest(self.key, label, "sha256")

    def _stream(self, nonce: bytes, size: int) -> bytes:
        key = self._derive(b"encrypt")
        blocks = (hmac.digest(key, nonce + i.to_bytes(4, "big"), "sha256") for i in range(0, size // 32 + 1))
        return b"".join(blocks)[:size]

    def _tag(self, nonce: bytes, sealed: bytes) -> bytes:
        return hmac.digest(self._derive(b"authenticate"), nonce + sealed, "sha256")[:_TAG]

    def seal(self, name: str) -> str:
        plain = name.encode()
        nonce = secrets.token_bytes(_NONCE)
        sealed = bytes(a ^ b for a, b in zip(plain, self._stream(nonce, len(plain)), strict=True))
        raw = nonce + sealed + self._tag(nonce, sealed)
        return CURSOR_MARK + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    def open(self, text: str) -> str | None:
        """The name inside a cursor this key sealed; None for anything else."""
        if not text.startswith(CURSOR_MARK) or len(text) > _MAX_CURSOR:
            return None
        body = text[len(CURSOR_MARK):]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (ValueError, binascii.Error):
            return None
        if len(raw) <= _NONCE + _TAG:
            return None
        nonce, sealed, tag = raw[:_NONCE], raw[_NONCE:-_TAG], raw[-_TAG:]
        if not hmac.compare_digest(tag, self._tag(nonce, sealed)):
            return None
        plain = bytes(a ^ b for a, b in zip(sealed, self._stream(nonce, len(sealed)), strict=True))
        try:
            return plain.decode()
        except UnicodeDecodeError:
            return None


def parse_paging(n: str | None, last: str | None, seal: CursorSeal | None = None) -> Paging:
    """Distribution 2.8.2's reading: a non-number, negative or int64-overflowing ``n`` means the default.

    A sealed ``last`` (one this proxy wrote) is opened; one it cannot open
    (the key changed: a restart without ``auth.token.secret_file``) is a 400
    that says to start again, never a silent restart from the top.
    """
    value: int | None = None
    if n is not None and _GO_INT.fullmatch(n):
        number = int(n)
        if 0 <= number <= _INT64_MAX:
            value = number
    if last and last.startswith(CURSOR_MARK):
        opened = seal.open(last) if seal is not None else None
        if opened is None:
            raise ProxyError(400, "UNSUPPORTED", "this catalog page link has expired or is not one this "
                             "registry wrote: list the catalog again from the start")
        last = opened
    return Paging(n=DEFAULT_N if value is None else value, last=last or None, n_given=value is not None)


def catalog_path(n: int | None, last: str | None) -> str:
    """``/v2/_catalog`` with ``last`` and ``n`` URL-encoded in that order, as distribution writes its links."""
    params: list[tuple[str, str]] = []
    if last is not None:
        params.append(("last", last))
    if n is not None:
        params.append(("n", str(n)))
    return CATALOG_PATH + ("?" + urlencode(params) if params else "")


def link_header(n: int, last: str) -> str:
    """The ``Link`` value for the next page: a relative path, as the registry itself writes it."""
    return f'<{catalog_path(n, last)}>; rel="next"'


def parse_page(body: bytes) -> list[str]:
    """The names in one backend page; :class:`PageError` for anything else (never half a page)."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PageError("the catalog page is not JSON") from exc
    if not isinstance(data, dict) or "repositories" not in data:
        raise PageError("the catalog page has no list of repository names")
    names = data["repositories"]
    if names is None:
        return []  # Go writes a nil slice as null
    if not isinstance(names, list) or not all(isinstance(name, str) and name for name in names):
        raise PageError("the catalog page has no list of repository names")
    return names


@dataclass(frozen=True)
class CatalogAnswer:
    """What the client gets: the visible names, and where its next request resumes (None: the end)."""

    repositories: list[str]
    next_last: str | None
    next_hidden: bool = False  # next_last is a name the caller may not see: it is only ever written sealed

    def link(self, n: int, seal: CursorSeal | None = None) -> str | None:
        """The ``Link`` value; a hidden resume point is written sealed, so it needs ``seal``."""
        if self.next_last is None:
            return None
        if not self.next_hidden:
            return link_header(n, self.next_last)
        if seal is None:
            raise ValueError("a hidden resume point needs a CursorSeal")
        return link_header(n, seal.seal(self.next_last))


@dataclass
class CatalogWalk:
    """One client request's walk over backend pages; drive it with :meth:`query` and :meth:`feed`.

    ::

        walk = CatalogWalk(paging, visible)
        while (path := walk.query()) is not None:
            names, more = ...fetch path from the backend...
            walk.feed(names, more)
        answer = walk.answer()

    ``more`` is whether the backend said there may be further names (its own
    ``Link`` header). The walk never asks for a name twice and never skips
    one: every backend page starts after the last name it scanned.
    """

    paging: Paging
    visible: Callable[[str], bool]
    max_pages: int = MAX_PAGES
    max_scanned: int = MAX_SCANNED
    _cursor: str | None = field(init=False, default=None)
    _cursor_hidden: bool = field(init=False, default=False)
    _found: list[str] = field(init=False, default_factory=list)
    _pages: int = field(init=False, default=0)
    _scanned: int = field(init=False, default=0)
    _answer: CatalogAnswer | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self._cursor = self.paging.last
        if self.paging.n == 0:  # distribution: an empty list and no Link, whatever the catalog holds
            self._answer = CatalogAnswer([], None)

    def query(self) -> str | None:
        """The backend path to fetch next, or None when the answer is ready."""
        if self._answer is not None:
            return None
        return catalog_path(self.paging.n if self.paging.n_given else None, self._cursor)

    def feed(self, names: Sequence[str], more: bool) -> None:
        """Take one backend page (in the backend's order) and whether the backend has more after it."""
        if self._answer is not None:
            raise RuntimeError("the walk is finished")
        self._pages += 1
        before = self._cursor
        for index, name in enumerate(names):
            self._scanned += 1
            self._cursor = name
            self._cursor_hidden = not self.visible(name)
            if self._cursor_hidden:
                continue
            self._found.append(name)
            if len(self._found) >= self.paging.n:
                rest = more or index + 1 < len(names)
                self._finish(name if rest else None)
                return
        if not more or not names or self._cursor == before:
            self._finish(None)  # exhausted (or a backend that does not advance: never loop on it)
        elif self._pages >= self.max_pages or self._scanned >= self.max_scanned:
            self._finish(self._cursor, self._cursor_hidden)  # the bound: resume after the last name scanned

    def answer(self) -> CatalogAnswer:
        if self._answer is None:
            raise RuntimeError("the walk is not finished: fetch query() and feed() it first")
        return self._answer

    def _finish(self, next_last: str | None, hidden: bool = False) -> None:
        self._answer = CatalogAnswer(list(self._found), next_last, hidden)
