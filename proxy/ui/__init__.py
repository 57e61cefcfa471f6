"""The web catalog on the registry's own origin: browse what you may pull, sign in, delete what you may.

A layer above ``proxy.http`` (it reads the runtime, the gate's policy and the
backend pool the API uses) and below ``proxy.observability``. Nothing in
``proxy.http`` imports it: ``create_app`` calls :func:`install` through its
``extend`` hook, given by ``proxy.server`` (where the app is built), so the
catalog's routes are in place before the API's catch-all route.

* ``present``, ``images``, ``session``, ``cache``: pure (escaping, sorting,
  formatting; manifests and configs; signed sessions and CSRF; the LRU)
* ``backend``, ``browse``: the registry reads, bounded and cached
* ``pages``, ``tagpage``: HTML render functions; ``static/``: CSS, JS, icon
* ``visit``, ``handlers``: who is asking, what they may do, the answers
"""

from __future__ import annotations

from aiohttp import web

from proxy import version
from proxy.config import Config
from proxy.ui.handlers import serve
from proxy.ui.state import UI_STATE, UIState, load_assets
from proxy.ui.visit import harden

__all__ = ["install"]


def install(app: web.Application, config: Config) -> None:
    """Add the catalog's routes (and ``/`` -> ``ui.path``) when ``ui.enabled``; call before the catch-all."""
    ui = config.ui
    if not ui.enabled:
        return
    app[UI_STATE] = UIState(ui.path, load_assets(ui.path), version())

    async def to_catalog(request: web.Request) -> web.StreamResponse:
        """A browser asking for ``/`` (or ``ui.path`` without its slash) lands on the catalog."""
        return harden(web.Response(status=302, headers={"Location": ui.path}))

    app.router.add_get("/", to_catalog)
    app.router.add_get(ui.path.rstrip("/"), to_catalog)
    app.router.add_route("*", ui.path + "{tail:.*}", serve)
