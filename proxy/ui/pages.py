"""The catalog's pages as small render functions (pure): every value goes through ``fmt``/``esc``.

No template engine: the pages are few and small, and a function per page
keeps each escaping decision next to the markup it protects. Links are built
here only (:func:`repo_url`, :func:`tag_url`, :func:`delete_url`) from names
and tags the registry grammar already restricts, and are quoted anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from proxy.ui.browse import TagRow
from proxy.ui.present import Html, esc, fmt, format_time, human_size, join, short_digest

__all__ = ["Chrome", "catalog_page", "confirm_page", "delete_url", "error_page", "layout", "repo_url",
           "repository_page", "signin_page", "tag_url"]


@dataclass(frozen=True)
class Chrome:
    """What every page's frame needs: where the catalog lives, who is signed in, the form token."""

    base: str  # ui.path
    host: str  # the public host[:port], for pull commands
    user: str | None
    csrf: str
    here: str  # this page's path and query: where signing in returns to
    css: str
    js: str
    icon: str
    version: str


def repo_url(base: str, name: str, **query: str) -> str:
    return f"{base}r/{quote(name, safe='/')}" + (f"?{urlencode(query)}" if query else "")


def tag_url(base: str, name: str, tag: str, platform: str | None = None) -> str:
    url = f"{base}r/{quote(name, safe='/')}/-/tag/{quote(tag, safe='')}"
    return url + (f"?{urlencode({'platform': platform})}" if platform else "")


def delete_url(base: str, name: str, digest: str | None = None) -> str:
    url = f"{base}r/{quote(name, safe='/')}/-/delete"
    return url + (f"?{urlencode({'digest': digest})}" if digest else "")


def csrf_field(chrome: Chrome) -> Html:
    return fmt('<input type="hidden" name="csrf" value="{}">', chrome.csrf)


def layout(chrome: Chrome, title: str, body: Html) -> Html:
    if chrome.user is not None:
        nav = fmt('<span>Signed in as <b>{}</b></span><form class="inline" method="post" action="{}signout">{}'
                  '<button type="submit">Sign out</button></form>', chrome.user, chrome.base, csrf_field(chrome))
    else:
        nav = fmt('<a href="{}signin?{}">Sign in</a>', chrome.base, urlencode({"next": chrome.here}))
    return fmt(
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<title>{title} · {host}</title><link rel="icon" href="{icon}" type="image/svg+xml">'
        '<link rel="stylesheet" href="{css}"><script src="{js}" defer></script></head>\n'
        '<body><header class="top"><a class="brand" href="{base}">{host}</a><nav>{nav}</nav></header>\n'
        '<main>{body}</main>\n<footer>registry-auth-proxy {version} · the registry API is at /v2/</footer>'
        '</body></html>\n',
        title=title, host=chrome.host, icon=chrome.icon, css=chrome.css, js=chrome.js, base=chrome.base,
        nav=nav, body=body, version=chrome.version)


def error_page(chrome: Chrome, status: int, title: str, message: str, signin_hint: bool = False) -> Html:
    hint = fmt('<p><a class="button" href="{}signin?{}">Sign in</a> to see more.</p>', chrome.base,
               urlencode({"next": chrome.here})) if signin_hint and chrome.user is None else Html("")
    body = fmt('<h1>{}</h1><p class="note">HTTP {}</p><p>{}</p>{}<p><a href="{}">Back to the catalog</a></p>',
               title, status, message, hint, chrome.base)
    return layout(chrome, title, body)


def _pager(base_url: str, page: int, pages: int, query: dict[str, str]) -> Html:
    if pages <= 1:
        return Html("")

    def link(number: int, text: str) -> Html:
        return fmt('<a href="{}?{}">{}</a>', base_url, urlencode({**query, "page": str(number)}), text)

    prev = link(page - 1, "← Previous") if page > 1 else Html("")
    after = link(page + 1, "Next →") if page < pages else Html("")
    return fmt('<nav class="pages">{}<span>Page {} of {}</span>{}</nav>', prev, page, pages, after)


def catalog_page(chrome: Chrome, names: Sequence[str], *, total: int, matching: int, query: str, page: int,
                 pages: int, truncated: bool) -> Html:
    """``names``: this page's slice of the ``matching`` names (out of ``total`` visible)."""
    if query:
        count = fmt("{} of {} repositories match “{}”", f"{matching:,}", f"{total:,}", query)
    else:
        count = fmt("{} {}", f"{total:,}", "repository" if total == 1 else "repositories")
    items = join(fmt('<li data-name="{0}"><a href="{1}">{0}</a></li>', n, repo_url(chrome.base, n)) for n in names)
    empty = Html("")
    if not names:
        more = " Sign in to see private ones." if chrome.user is None else ""
        empty = fmt('<p class="notice">{}{}</p>', "No repository matches." if query else
                    "There is no repository you may pull.", more)
    cut = fmt('<p class="notice warn">The registry lists more repositories than one page view walks; the '
              'first {} are shown. Use the filter to narrow them down.</p>', f"{total:,}") if truncated else Html("")
    body = fmt(
        '<h1>Repositories</h1><form class="filter" method="get" action="{base}" role="search">'
        '<label for="q">Filter</label><input id="q" name="q" type="search" value="{q}" maxlength="255" '
        'placeholder="part of a name" data-filter="repos"><button type="submit">Filter</button></form>'
        '<p class="count"><span id="count">{count}</span> <span id="repos-shown"></span></p>{cut}{empty}'
        '<ul class="repos" id="repos">{items}</ul>{pager}',
        base=chrome.base, q=query, count=count, cut=cut, empty=empty,
        items=items, pager=_pager(chrome.base, page, pages, {"q": query} if query else {}))
    return layout(chrome, "Repositories", body)


def _platforms(row: TagRow) -> Html:
    summary = row.summary
    if summary is None:
        return Html("")
    if not summary.platforms:
        return esc(summary.platform or "")
    return fmt('<ul class="plats">{}</ul>', join(
        fmt('<li>{} <span class="note">{}</span></li>', p.name, human_size(p.size)) for p in summary.platforms))


def _row(chrome: Chrome, name: str, row: TagRow, may_delete: bool) -> Html:
    tag_link = fmt('<a href="{}">{}</a>', tag_url(chrome.base, name, row.tag), row.tag)
    if row.digest is None or row.summary is None:
        return fmt('<tr data-name="{}"><td>{}</td><td colspan="5" class="note">not available (deleted or '
                   'unreadable)</td></tr>', row.tag, tag_link)
    summary = row.summary
    stamp, shown = format_time(summary.created)
    size = "per platform" if summary.platforms else human_size(summary.size)
    delete = fmt('<a class="button danger" href="{}">Delete</a>', delete_url(chrome.base, name, row.digest)) \
        if may_delete else Html("")
    return fmt('<tr data-name="{tag}"><td>{link}</td><td><code title="{digest}">{short}</code></td><td>{size}</td>'
               '<td><time datetime="{stamp}">{shown}</time></td><td>{plats}</td><td>{delete}</td></tr>',
               tag=row.tag, link=tag_link, digest=row.digest, short=short_digest(row.digest), size=size,
               stamp=stamp, shown=shown, plats=_platforms(row), delete=delete)


def repository_page(chrome: Chrome, name: str, rows: Sequence[TagRow], *, total: int, page: int, pages: int,
                    may_delete: bool, deleted: str | None) -> Html:
    notice = fmt('<p class="notice">Deleted {} and every tag that pointed at it.</p>', deleted) \
        if deleted else Html("")
    table = fmt('<table><thead><tr><th>Tag</th><th>Digest</th><th>Size</th><th>Created</th><th>Platforms</th>'
                '<th></th></tr></thead><tbody id="tags">{}</tbody></table>',
                join(_row(chrome, name, r, may_delete) for r in rows)) if rows else \
        fmt('<p class="notice">This repository has no tags.</p>')
    body = fmt(
        '<p class="crumbs"><a href="{base}">Repositories</a> /</p><h1>{name}</h1>'
        '<div class="pull"><code id="pull-cmd">docker pull {host}/{name}</code>'
        '<button type="button" data-copy="pull-cmd" hidden>Copy</button></div>{notice}'
        '<div class="filter"><label for="tag-filter">Filter tags</label><input id="tag-filter" type="search" '
        'data-filter="tags" placeholder="on this page"></div>'
        '<p class="count">{count} <span id="tags-shown"></span></p>{table}{pager}',
        base=chrome.base, name=name, host=chrome.host, notice=notice,
        count=f"{total:,} tag" + ("" if total == 1 else "s"), table=table,
        pager=_pager(repo_url(chrome.base, name), page, pages, {}))
    return layout(chrome, name, body)


def signin_page(chrome: Chrome, next_url: str, message: str | None, secure: bool) -> Html:
    problem = fmt('<p class="notice warn" role="alert">{}</p>', message) if message else Html("")
    plain = Html("") if secure else fmt(
        '<p class="notice warn">This page was not reached over HTTPS: browsers keep the sign-in cookie '
        '(<code>Secure</code>) only for HTTPS origins and localhost.</p>')
    body = fmt(
        '<h1>Sign in</h1>{problem}{plain}<form class="card" method="post" action="{base}signin">{csrf}'
        '<input type="hidden" name="next" value="{next}">'
        '<label>User <input type="text" name="user" autocomplete="username" required maxlength="255"></label>'
        '<label>Password <input type="password" name="password" autocomplete="current-password" required>'
        '</label><button type="submit">Sign in</button></form>'
        '<p class="note">The same users as <code>docker login {host}</code>.</p>',
        problem=problem, plain=plain, base=chrome.base, csrf=csrf_field(chrome), next=next_url, host=chrome.host)
    return layout(chrome, "Sign in", body)


def confirm_page(chrome: Chrome, name: str, digest: str, tags: Sequence[str], complete: bool) -> Html:
    """The delete confirmation: names every tag the delete takes with it."""
    if tags:
        listed = fmt("<p>These tags point at it and are deleted with it:</p><ul>{}</ul>",
                     join(fmt("<li><code>{}:{}</code></li>", name, t) for t in tags))
    else:
        listed = fmt("<p>No tag points at it any more.</p>")
    partial = Html("") if complete else fmt('<p class="notice warn">The repository has too many tags to check '
                                            'them all: others may point at it too.</p>')
    body = fmt(
        '<p class="crumbs"><a href="{base}">Repositories</a> / <a href="{repo}">{name}</a> /</p>'
        '<h1>Delete {short}?</h1><p>This deletes the manifest <code>{digest}</code> from <b>{name}</b>.</p>'
        '{listed}{partial}<form method="post" action="{action}">{csrf}'
        '<input type="hidden" name="digest" value="{digest}">'
        '<button type="submit" class="danger">Delete {count}</button> <a href="{repo}">Cancel</a></form>',
        base=chrome.base, repo=repo_url(chrome.base, name), name=name, short=short_digest(digest), digest=digest,
        listed=listed, partial=partial, action=delete_url(chrome.base, name), csrf=csrf_field(chrome),
        count=f"{len(tags)} tag" + ("" if len(tags) == 1 else "s") if tags else "the manifest")
    return layout(chrome, f"Delete from {name}", body)
