"""The catalog's one handler: route a path under ``ui.path`` to a page, and every refusal to an error page.

Paths are judged raw, like the API's: names and tags need no encoding, so
a ``%`` (or a backslash) is simply not a page. Layout under ``ui.path``::

    ""                          the catalog (?q=filter, ?page=N)
    r/NAME                      a repository (?page=N)
    r/NAME/-/tag/TAG            a tag (?platform=DIGEST for an index's entry)
    r/NAME/-/delete             GET: the confirmation (?digest=), POST: the delete
    signin, signout             the session
    static/FILE                 CSS, JS and the icon, cached for a year

(``-`` cannot be a name component, so ``/-/`` cannot be part of a name.)
"""

from __future__ import annotations

import logging
import math
import time

from aiohttp import web

from auth.credentials import Basic
from auth.errors import ProxyError
from auth.hosts import public_origin
from auth.names import valid_digest, valid_name, valid_tag
from proxy.http.app import client_address
from proxy.http.keys import CLIENT, LIVE, RATES, STATS, USER
from proxy.ui import pages
from proxy.ui.browse import tag_detail, tag_rows, tags_on
from proxy.ui.present import Html, fmt, safe_next, sort_tags
from proxy.ui.session import Session
from proxy.ui.state import UI_STATE, UIState
from proxy.ui.tagpage import tag_page
from proxy.ui.visit import Visit, harden

__all__ = ["PAGE_SIZE", "serve"]

log = logging.getLogger(__name__)

PAGE_SIZE = 100  # repositories or tags per page
READ = frozenset({"GET", "HEAD"})
TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 405: "Not possible here", 413: "Too large",
          423: "Read-only for maintenance", 429: "Too many requests", 502: "Registry unavailable",
          503: "Unavailable", 504: "Registry too slow"}


def _not_found(what: str = "There is no such page in the catalog.") -> ProxyError:
    return ProxyError(404, "NOT_FOUND", what)


def _method(allow: str) -> ProxyError:
    return ProxyError(405, "UNSUPPORTED", "This page does not take that method.", {"Allow": allow})


def _page(value: str | None) -> int:
    return int(value) if value is not None and value.isdigit() and 0 < len(value) < 7 and int(value) > 0 else 1


def _html(visit: Visit, body: Html, status: int = 200) -> web.StreamResponse:
    return visit.finish(web.Response(status=status, text=body, content_type="text/html", charset="utf-8"))


def _redirect(location: str, status: int = 303) -> web.Response:
    return web.Response(status=status, headers={"Location": location})


async def serve(request: web.Request) -> web.StreamResponse:
    """Every request under ``ui.path``; counted, rate-limited and logged like API requests."""
    app = request.app
    stats, state = app[STATS], app[UI_STATE]
    stats.requests_in_flight += 1
    visit: Visit | None = None
    try:
        runtime = app[LIVE].runtime
        client = client_address(request, runtime)
        request[CLIENT] = client
        app[RATES].check(client, stats)
        rest = request.raw_path.partition("?")[0][len(state.base):]
        if rest.startswith("static/"):
            return _static(request, state, rest[len("static/"):])
        origin = public_origin(request.scheme, request.headers.getall("Host", []), client, runtime.config.public_url)
        visit = Visit.begin(request, runtime, state, origin)
        if visit.who is not None:
            request[USER] = visit.who.name
        return await _route(visit, rest)
    except ProxyError as err:
        return _error(visit, err)
    finally:
        stats.requests_in_flight -= 1


def _static(request: web.Request, state: UIState, name: str) -> web.StreamResponse:
    if request.method not in READ:
        raise _method("GET, HEAD")
    asset = state.assets.files.get(name)
    if asset is None:
        raise _not_found()
    response = web.Response(body=asset.body, headers={"Content-Type": asset.content_type, "ETag": asset.etag})
    return harden(response, "public, max-age=31536000, immutable")


def _error(visit: Visit | None, err: ProxyError) -> web.StreamResponse:
    """A readable page for any refusal; challenge headers are dropped (no browser password dialog)."""
    title = TITLES.get(err.status, "Error")
    if visit is None:  # no trusted Host yet: a bare page that names nothing from the request
        body = fmt('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{}</title></head>'
                   '<body><h1>{}</h1><p>{}</p></body></html>', title, title, err.message)
        response: web.StreamResponse = harden(web.Response(status=err.status, text=body, content_type="text/html"))
    else:
        body = pages.error_page(visit.chrome(), err.status, title, err.message,
                                signin_hint=err.status in (403, 404))
        response = _html(visit, body, err.status)
    for name in ("Allow", "Retry-After"):
        if name in err.headers:
            response.headers[name] = err.headers[name]
    return response


async def _route(visit: Visit, rest: str) -> web.StreamResponse:
    method = visit.request.method
    if "%" in rest or "\\" in rest:
        raise _not_found()
    if rest in ("signin", "signout"):
        return await (_signin(visit) if rest == "signin" else _signout(visit))
    if rest == "":
        if method not in READ:
            raise _method("GET, HEAD")
        return await _catalog(visit)
    if not rest.startswith("r/"):
        raise _not_found()
    name, sep, sub = rest[2:].partition("/-/")
    if not valid_name(name):
        raise _not_found()
    if sub == "delete" and sep:
        return await (_delete(visit, name) if method == "POST" else _confirm(visit, name))
    if method not in READ:
        raise _method("GET, HEAD")
    if not visit.may_pull(name):
        raise _not_found(f"There is no repository {name} that you may see.")
    if not sep:
        return await _repository(visit, name)
    if sub.startswith("tag/") and valid_tag(sub[4:]):
        return await _tag(visit, name, sub[4:])
    raise _not_found()


async def _catalog(visit: Visit) -> web.StreamResponse:
    refusal = visit.catalog_refusal()
    if refusal is not None:
        raise refusal
    query = visit.request.query.get("q", "").strip().lower()[:255]
    reader = visit.reader()
    try:
        listing = await reader.catalog(visit.may_pull)
    finally:
        reader.close()
    matching = [n for n in listing.names if query in n] if query else listing.names
    pages_total = max(1, math.ceil(len(matching) / PAGE_SIZE))
    page = min(_page(visit.request.query.get("page")), pages_total)
    shown = matching[(page - 1) * PAGE_SIZE:page * PAGE_SIZE]
    return _html(visit, pages.catalog_page(visit.chrome(), shown, total=len(listing.names), matching=len(matching),
                                           query=query, page=page, pages=pages_total, truncated=listing.truncated))


async def _repository(visit: Visit, name: str) -> web.StreamResponse:
    reader = visit.reader()
    try:
        tags = await reader.tags(name)
        if tags is None:
            raise _not_found(f"There is no repository {name} that you may see.")
        ordered = sort_tags(tags)
        pages_total = max(1, math.ceil(len(ordered) / PAGE_SIZE))
        page = min(_page(visit.request.query.get("page")), pages_total)
        rows = await tag_rows(reader, name, ordered[(page - 1) * PAGE_SIZE:page * PAGE_SIZE])
    finally:
        reader.close()
    deleted = visit.request.query.get("deleted")
    body = pages.repository_page(visit.chrome(), name, rows, total=len(ordered), page=page, pages=pages_total,
                                 may_delete=visit.delete_refusal(name) is None,
                                 deleted=deleted if deleted and valid_digest(deleted) else None)
    return _html(visit, body)


async def _tag(visit: Visit, name: str, tag: str) -> web.StreamResponse:
    platform = visit.request.query.get("platform")
    reader = visit.reader()
    try:
        detail = await tag_detail(reader, name, tag, platform if platform and valid_digest(platform) else None)
    finally:
        reader.close()
    if detail is None:
        raise _not_found(f"There is no tag {tag} in {name}.")
    return _html(visit, tag_page(visit.chrome(), name, detail, visit.delete_refusal(name) is None))


def _delete_target(visit: Visit, name: str, digest: object) -> str:
    """The digest to delete, once the visitor may see the repository and may delete in it."""
    if not visit.may_pull(name):
        raise _not_found(f"There is no repository {name} that you may see.")
    if not isinstance(digest, str) or not valid_digest(digest):
        raise ProxyError(400, "DIGEST_INVALID", "Say which digest to delete.")
    refusal = visit.delete_refusal(name, digest)
    if refusal is not None:
        raise refusal
    return digest


async def _confirm(visit: Visit, name: str) -> web.StreamResponse:
    if visit.request.method not in READ:
        raise _method("GET, HEAD, POST")
    digest = _delete_target(visit, name, visit.request.query.get("digest"))
    reader = visit.reader()
    try:
        tags = await reader.tags(name)
        if tags is None or await reader.resolve(name, digest) is None:
            raise _not_found(f"{digest} is not in {name} (any more).")
        on, complete = await tags_on(reader, name, digest, sort_tags(tags))
    finally:
        reader.close()
    return _html(visit, pages.confirm_page(visit.chrome(), name, digest, on, complete))


async def _form(visit: Visit) -> dict[str, str]:
    try:
        form = await visit.request.post()
    except web.HTTPRequestEntityTooLarge:  # over the app's 64 KiB: no form of ours is near that
        raise ProxyError(413, "UNSUPPORTED", "This form is far larger than any form of this page.") from None
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    if not visit.csrf_ok(fields.get("csrf")):
        raise ProxyError(403, "DENIED", "This form has expired or did not come from this page: reload the page "
                         "and try again.")
    return fields


async def _delete(visit: Visit, name: str) -> web.StreamResponse:
    fields = await _form(visit)
    digest = _delete_target(visit, name, fields.get("digest"))
    runtime = visit.runtime
    if runtime.maintenance.active():
        raise runtime.maintenance.refusal()
    stats = visit.request.app[STATS]
    stats.writes_in_flight += 1  # what gc waits for, as for an API delete
    reader = visit.reader()
    try:
        gone = await reader.delete(name, digest)
    finally:
        reader.close()
        stats.writes_in_flight -= 1
    log.info("ui: %s deleted %s@%s%s", visit.who.name if visit.who else "anonymous", name, digest,
             "" if gone else " (already gone)")
    return visit.finish(_redirect(pages.repo_url(visit.state.base, name, deleted=digest)))


async def _signin(visit: Visit) -> web.StreamResponse:
    request, base = visit.request, visit.state.base
    secure = visit.origin.scheme == "https"
    if request.method in READ:
        target = safe_next(request.query.get("next"), base)
        return _html(visit, pages.signin_page(visit.chrome(), target, None, secure))
    if request.method != "POST":
        raise _method("GET, HEAD, POST")
    fields = await _form(visit)
    target = safe_next(fields.get("next"), base)
    user, password = fields.get("user", ""), fields.get("password", "")
    if not user or not password or len(user) > 255 or len(password) > 1024:
        return _html(visit, pages.signin_page(visit.chrome(), target, "Enter a user name and a password.", secure),
                     400)
    gate = visit.runtime.gate
    try:
        identity = await gate.login(Basic(user, password), visit.origin)
    except ProxyError as err:
        text = err.message if err.status == 429 else "Wrong user name or password."
        response = _html(visit, pages.signin_page(visit.chrome(), target, text, secure), err.status
                         if err.status == 429 else 403)
        if "Retry-After" in err.headers:
            response.headers["Retry-After"] = err.headers["Retry-After"]
        return response
    fingerprint = gate.store.snapshot().fingerprint(identity.name)
    visit.sign_in(Session.new(identity.name, fingerprint, visit.runtime.config.ui.session_ttl, time.time()), identity)
    request[USER] = identity.name
    return visit.finish(_redirect(target))


async def _signout(visit: Visit) -> web.StreamResponse:
    if visit.request.method != "POST":
        raise _method("POST")
    await _form(visit)
    visit.sign_out()
    return visit.finish(_redirect(visit.state.base))
