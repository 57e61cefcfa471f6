"""The tag page: pull commands, facts, platforms, and everything the image config says (pure).

Every string here came from a pusher: labels, env, history, entrypoint.
They go through ``fmt``/``esc`` like everything else; entrypoint and cmd
are shown in exec form as JSON text (``json.dumps`` output is then
HTML-escaped as a whole); a label value becomes a link only when it is a
plain ``http(s)`` URL (:func:`~proxy.ui.present.external_link`).
"""

from __future__ import annotations

import json

from proxy.ui.browse import TagDetail
from proxy.ui.images import Descriptor, ImageConfig
from proxy.ui.pages import Chrome, delete_url, layout, repo_url, tag_url
from proxy.ui.present import Html, esc, external_link, fmt, format_time, human_size, join, parse_created

__all__ = ["tag_page"]


def _copyable(ident: str, text: str) -> Html:
    return fmt('<div class="pull"><code id="{0}">{1}</code><button type="button" data-copy="{0}" hidden>Copy'
               '</button></div>', ident, text)


def _facts(rows: list[tuple[str, Html | str]]) -> Html:
    return fmt('<dl class="facts">{}</dl>', join(fmt("<dt>{}</dt><dd>{}</dd>", k, v) for k, v in rows))


def _table(heads: tuple[str, ...], rows: list[Html], empty: str) -> Html:
    if not rows:
        return fmt('<p class="note">{}</p>', empty)
    return fmt("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>",
               join(fmt("<th>{}</th>", h) for h in heads), join(rows))


def _exec_form(words: tuple[str, ...] | None) -> Html:
    if words is None:
        return fmt('<span class="note">not set</span>')
    return fmt("<code>{}</code>", json.dumps(list(words), ensure_ascii=False))


def _label_value(value: str) -> Html:
    link = external_link(value)
    if link is None:
        return esc(value)
    return fmt('<a href="{}" rel="noopener noreferrer nofollow">{}</a>', link, value)


def _time(text: str | None) -> Html:
    stamp, shown = format_time(parse_created(text))
    return fmt('<time datetime="{}">{}</time>', stamp, shown)


def _config(config: ImageConfig, layers: tuple[Descriptor, ...]) -> Html:
    run = _facts([
        ("Entrypoint", _exec_form(config.entrypoint)),
        ("Cmd", _exec_form(config.cmd)),
        ("User", config.user or "—"),
        ("Working directory", config.workdir or "—"),
        ("Exposed ports", join((fmt("<code>{}</code>", p) for p in config.ports), " ") or "—"),
    ])
    env = _table(("Name", "Value"), [
        fmt("<tr><td><code>{}</code></td><td><code>{}</code></td></tr>", *entry.partition("=")[::2])
        for entry in config.env], "No environment variables.")
    labels = _table(("Label", "Value"), [
        fmt("<tr><td><code>{}</code></td><td>{}</td></tr>", key, _label_value(value))
        for key, value in config.labels], "No labels.")
    layer_rows = [fmt('<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td class="note">{}</td></tr>',
                      i + 1, d.digest, human_size(d.size), d.media_type) for i, d in enumerate(layers)]
    history = _table(("Created", "Step", "Comment"), [
        fmt('<tr><td>{}</td><td><pre>{}</pre></td><td class="note">{}{}</td></tr>', _time(h.created), h.created_by,
            h.comment, " (no layer)" if h.empty_layer else "") for h in config.history], "No history recorded.")
    return fmt('<h2>Run</h2>{}<h2>Environment</h2>{}<h2>Labels</h2>{}<h2>Layers</h2>{}<h2>History</h2>{}', run, env,
               labels, _table(("#", "Digest", "Size", "Media type"), layer_rows, "No layers."), history)


def _platform_table(chrome: Chrome, name: str, detail: TagDetail) -> Html:
    rows = []
    for p in detail.summary.platforms:
        stamp, shown = format_time(p.created)
        rows.append(fmt('<tr class="{}"><td><a href="{}">{}</a></td><td><code title="{}">{}</code></td><td>{}</td>'
                        '<td><time datetime="{}">{}</time></td></tr>', "chosen" if p.digest == detail.chosen else "",
                        tag_url(chrome.base, name, detail.tag, p.digest), p.name, p.digest, p.digest,
                        human_size(p.size), stamp, shown))
    return fmt("<h2>Platforms</h2>{}", _table(("Platform", "Digest", "Size", "Created"), rows, "No platforms."))


def tag_page(chrome: Chrome, name: str, detail: TagDetail, may_delete: bool) -> Html:
    manifest, summary = detail.manifest, detail.summary
    ref = f"{chrome.host}/{name}"
    stamp, shown = format_time(summary.created)
    facts: list[tuple[str, Html | str]] = [
        ("Digest", fmt("<code>{}</code>", manifest.digest)),
        ("Media type", manifest.media_type or "—"),
        ("Size", "per platform (below)" if manifest.is_index else human_size(summary.size)),
        ("Created", fmt('<time datetime="{}">{}</time>', stamp, shown)),
    ]
    if not manifest.is_index:
        facts.append(("Platform", summary.platform or "—"))
    parts = [_copyable("pull-tag", f"docker pull {ref}:{detail.tag}"),
             _copyable("pull-digest", f"docker pull {ref}@{manifest.digest}"), _facts(facts)]
    if may_delete:
        parts.append(fmt('<p><a class="button danger" href="{}">Delete this digest…</a></p>',
                         delete_url(chrome.base, name, manifest.digest)))
    if manifest.is_index:
        parts.append(_platform_table(chrome, name, detail))
        chosen = next((p for p in summary.platforms if p.digest == detail.chosen), None)
        if chosen is not None:
            parts.append(fmt("<h2>{} <span class=\"note\">{}</span></h2>", chosen.name, chosen.digest))
    if detail.config is not None and detail.image is not None:
        parts.append(_config(detail.config, detail.image.layers))
    elif detail.image is None or detail.image.config is None:
        parts.append(fmt('<p class="note">No image configuration to show (not an image, or unreadable).</p>'))
    body = fmt('<p class="crumbs"><a href="{}">Repositories</a> / <a href="{}">{}</a> /</p><h1>{}:{}</h1>{}',
               chrome.base, repo_url(chrome.base, name), name, name, detail.tag, join(parts))
    return layout(chrome, f"{name}:{detail.tag}", body)
