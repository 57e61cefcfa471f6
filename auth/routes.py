"""Which routes exist, and what each request does (pure, judged on the raw path).

Only the registry API's own ``/v2`` routes and the token endpoint are
served; anything else is refused here, before identity or policy are
consulted. The path is judged raw, as the client sent it, and forwarded byte
for byte, so nothing the registry decodes later can differ from what was
checked. The token endpoint is matched on the raw path too: ``/tok%65n`` is
not ``/token``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from auth.access import Action
from auth.errors import ProxyError
from auth.names import valid_digest, valid_name, valid_reference

__all__ = ["API_METHODS", "METHOD_ACTIONS", "Route", "Router", "judge_body_type"]

METHOD_ACTIONS = {
    "GET": Action.PULL,
    "HEAD": Action.PULL,
    "POST": Action.PUSH,
    "PUT": Action.PUSH,
    "PATCH": Action.PUSH,
    "DELETE": Action.DELETE,
}
API_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE"
TOKEN_METHODS = "GET, POST"

_READ = frozenset({"GET", "HEAD"})
# distribution's blob route takes any ``algorithm:encoded`` and answers 400 DIGEST_INVALID when it
# does not parse; a read of something that is not even that shape is "unknown" (404), as its router says.
_LOOSE_DIGEST = re.compile(r"[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[A-Za-z0-9=_-]+")
_BAD_PATH = re.compile(r"%|\\|\x00|//|/\.\.?(?:/|$)|[^\x21-\x7e]")
# (kind, what follows the name, methods); the name before the suffix is matched greedily,
# as distribution's router does, so a repository called ``manifests`` still routes like any other.
_SUFFIXES = [
    ("tags", r"/tags/list", _READ),
    ("manifest", r"/manifests/(?P<ref>[^/]+)", _READ | {"PUT", "DELETE"}),
    ("upload", r"/blobs/uploads/(?P<uuid>[A-Za-z0-9_=-]*)", _READ | {"POST", "PATCH", "PUT", "DELETE"}),
    ("blob", r"/blobs/(?P<digest>[^/]+)", _READ | {"DELETE"}),
    ("referrers", r"/referrers/(?P<digest>[^/]+)", _READ),
]
_ROUTES = [(kind, re.compile(r"/(?P<name>.+)" + suffix), methods) for kind, suffix, methods in _SUFFIXES]


@dataclass(frozen=True)
class Route:
    """What one request is: its kind, repository and the action it needs."""

    kind: str  # token, base, catalog, tags, manifest, blob, upload, referrers
    name: str | None  # repository; None for token, base and catalog
    action: Action
    mount_from: str | None = None  # cross-repository mount source: needs pull there

    @property
    def is_ping(self) -> bool:
        return self.kind == "base"

    @property
    def is_token(self) -> bool:
        return self.kind == "token"


def _method_error(method: str, allow: str = API_METHODS) -> ProxyError:
    return ProxyError(405, "UNSUPPORTED", f"method {method} is not allowed here", {"Allow": allow})


def _not_found() -> ProxyError:
    return ProxyError(404, "NOT_FOUND", "only the registry API under /v2/ is served here")


def _checked(route: Route, method: str, methods: frozenset[str]) -> Route:
    if method not in methods:
        raise _method_error(method)
    return route


class Router:
    """Classifies ``method`` + raw path; raises :class:`ProxyError` with the status the client should get."""

    def __init__(self, token_path: str = "/token") -> None:
        self.token_path = token_path

    def parse(self, method: str, raw_path: str) -> Route:
        path, _, query = raw_path.partition("?")
        if path == self.token_path:
            if method not in ("GET", "POST"):
                raise _method_error(method, TOKEN_METHODS)
            return Route("token", None, Action.PULL)
        action = METHOD_ACTIONS.get(method)
        if action is None:  # case-sensitive: a lowercase "delete" is not DELETE
            raise _method_error(method)
        if path in ("/v2", "/v2/"):
            return _checked(Route("base", None, action), method, _READ)
        if not path.startswith("/v2/"):
            raise _not_found()
        if _BAD_PATH.search(path):
            raise ProxyError(400, "NAME_INVALID", "encoded, empty or dot path segments are not allowed")
        rest = path[len("/v2/"):]
        if rest == "_catalog":
            return _checked(Route("catalog", None, action), method, _READ)
        return self._repository_route(method, action, "/" + rest, query)

    def _repository_route(self, method: str, action: Action, rest: str, query: str) -> Route:
        kind, match, methods = _match(rest)
        name = match["name"]
        if not valid_name(name):
            raise ProxyError(400, "NAME_INVALID", f"invalid repository name {name!r}")
        groups = match.groupdict()
        read = method in _READ
        # A read of what cannot exist is "unknown" (404), as the registry answers; a write of it is
        # invalid (400). Neither is forwarded.
        if "ref" in groups and not valid_reference(groups["ref"]):
            if read:
                raise ProxyError(404, "MANIFEST_UNKNOWN", "manifest unknown: not a valid tag or digest")
            if ":" in groups["ref"]:
                raise ProxyError(400, "DIGEST_INVALID", "invalid digest")
            raise ProxyError(400, "TAG_INVALID", "invalid tag or digest")
        if "digest" in groups and not valid_digest(groups["digest"]):
            if read and not (kind == "blob" and _LOOSE_DIGEST.fullmatch(groups["digest"])):
                raise ProxyError(404, "BLOB_UNKNOWN" if kind == "blob" else "MANIFEST_UNKNOWN",
                                 "unknown: not a valid digest")
            raise ProxyError(400, "DIGEST_INVALID", "invalid digest")
        if kind == "upload":
            methods = frozenset({"POST"}) if not groups["uuid"] else methods - {"POST"}
        route = _checked(Route(kind, name, action), method, methods)
        if kind == "upload" and method == "POST":
            source = _mount_source(query)
            if source is not None:
                route = Route(kind, name, action, mount_from=source)
        return route


def _match(rest: str) -> tuple[str, re.Match[str], frozenset[str]]:
    """The first route whose suffix fits; the name is everything before it (names contain '/')."""
    for kind, regex, methods in _ROUTES:
        match = regex.fullmatch(rest)
        if match is not None:
            return kind, match, methods
    raise ProxyError(404, "NOT_FOUND", "unknown registry API route")


def _mount_source(query: str) -> str | None:
    """The ``from`` of a cross-repository mount; more than one is refused (the registry takes the first)."""
    if ";" in query:  # Go before 1.17 split queries on ';' too: a registry built so would see another `from`
        raise ProxyError(400, "UNSUPPORTED", "';' is not allowed in an upload query")
    sources = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "from"]
    if len(sources) > 1:
        raise ProxyError(400, "NAME_INVALID", "more than one mount source")
    source = sources[0] if sources else None
    if source is not None and not valid_name(source):
        raise ProxyError(400, "NAME_INVALID", f"invalid mount source {source!r}")
    return source


_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_FORM_MARKERS = ("x-www-form-urlencoded", "multipart/")


def judge_body_type(method: str, content_types: list[str]) -> None:
    """Refuse bodies the registry would read parameters from (its ``r.FormValue``).

    distribution reads ``from``, ``mount``, ``digest`` and ``_state`` with
    Go's ``FormValue``, which parses form-encoded and multipart bodies of
    POST, PUT and PATCH and lets them win over the query string the proxy
    judged. No registry client sends such a body (blob data is
    ``application/octet-stream``, manifests their media type), so they are
    refused rather than parsed: the judged query is then the only source of
    those parameters. The test is looser than Go's media-type parser on
    purpose (any value mentioning a form type), and two ``Content-Type``
    lines are refused because Go reads the first and others may read the last.
    """
    if method not in _BODY_METHODS or not content_types:
        return
    if len(content_types) > 1:
        raise ProxyError(400, "UNSUPPORTED", "more than one Content-Type header")
    value = content_types[0].lower()
    if any(marker in value for marker in _FORM_MARKERS):
        raise ProxyError(415, "UNSUPPORTED", "form bodies are not accepted on the registry API: send blob "
                         "data as application/octet-stream and manifests with their media type")
