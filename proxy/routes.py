"""Which ``/v2`` routes exist, and what each request does (pure, no aiohttp).

Only the registry API's own routes are forwarded; anything else is refused
here, before identity or policy are consulted. The path is judged raw, as the
client sent it, and forwarded byte for byte, so nothing the registry decodes
later can differ from what was checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl

from auth.names import valid_digest, valid_name, valid_reference
from auth.policy import Action

METHOD_ACTIONS = {
    "GET": Action.PULL,
    "HEAD": Action.PULL,
    "POST": Action.PUSH,
    "PUT": Action.PUSH,
    "PATCH": Action.PUSH,
    "DELETE": Action.DELETE,
}

_READ = frozenset({"GET", "HEAD"})
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


class RouteError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Route:
    kind: str  # base, catalog, tags, manifest, blob, upload, referrers
    name: str | None  # repository; None for base and catalog
    action: Action
    mount_from: str | None = None  # cross-repository mount source: needs pull there

    @property
    def is_ping(self) -> bool:
        return self.kind == "base"


def _method_error(method: str) -> RouteError:
    return RouteError(405, "UNSUPPORTED", f"method {method} is not allowed here")


def _split_name(rest: str) -> tuple[str, str, re.Match[str], frozenset[str]] | None:
    """Find the route suffix; the name is everything before it (names contain '/')."""
    for kind, regex, methods in _ROUTES:
        match = regex.fullmatch(rest)
        if match is not None:
            return kind, "/" + match["name"], match, methods
    return None


def parse_route(method: str, raw_path: str) -> Route:
    """Classify a request; raises RouteError with the status the client should get."""
    action = METHOD_ACTIONS.get(method)
    if action is None:  # case-sensitive: a lowercase "delete" is not DELETE
        raise _method_error(method)
    path, _, query = raw_path.partition("?")
    if path in ("/v2", "/v2/"):
        return _checked(Route("base", None, action), method, _READ)
    if not path.startswith("/v2/"):
        raise RouteError(404, "NOT_FOUND", "only the registry API under /v2/ is served here")
    if _BAD_PATH.search(path):
        raise RouteError(400, "NAME_INVALID", "encoded, empty or dot path segments are not allowed")
    rest = path[len("/v2/"):]
    if rest == "_catalog":
        return _checked(Route("catalog", None, action), method, _READ)
    found = _split_name("/" + rest)
    if found is None:
        raise RouteError(404, "NOT_FOUND", "unknown registry API route")
    kind, name, match, methods = found
    name = name[1:]
    if not valid_name(name):
        raise RouteError(400, "NAME_INVALID", f"invalid repository name {name!r}")
    groups = match.groupdict()
    if "ref" in groups and not valid_reference(groups["ref"]):
        raise RouteError(400, "TAG_INVALID", "invalid tag or digest")
    if "digest" in groups and not valid_digest(groups["digest"]):
        raise RouteError(400, "DIGEST_INVALID", "invalid digest")
    if kind == "upload":
        methods = frozenset({"POST"}) if not groups["uuid"] else methods - {"POST"}
    route = _checked(Route(kind, name, action), method, methods)
    if kind == "upload" and method == "POST":
        sources = [v for k, v in parse_qsl(query, keep_blank_values=True) if k == "from"]
        if len(sources) > 1:
            raise RouteError(400, "NAME_INVALID", "more than one mount source")
        source = sources[0] if sources else None
        if source is not None:
            if not valid_name(source):
                raise RouteError(400, "NAME_INVALID", f"invalid mount source {source!r}")
            route = Route(kind, name, action, mount_from=source)
    return route


def _checked(route: Route, method: str, methods: frozenset[str]) -> Route:
    if method not in methods:
        raise _method_error(method)
    return route
