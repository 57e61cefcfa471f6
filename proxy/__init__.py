"""registry-auth-proxy: the transport. ``auth`` decides; this package carries bytes.

Sub-packages by job, each depending only on those before it:

* ``config``        proxy.yml: the model, its reader and section parsers (no aiohttp)
* ``ops``           the maintenance switch and gc, shared by server and CLI (no aiohttp)
* ``http``          the public app: route, identify, decide, forward, stream back
* ``ui``            the web catalog on the same origin: browse, sign in, delete (judged as the API)
* ``observability`` access log, metrics, admin listener (after the fact)
* ``server``        listeners, TLS, signals, reload, drain; the one module with aiohttp internals
* ``cli``           the ``registry-auth-proxy`` command (imports the server only to serve)
"""

import importlib.metadata

__version__ = "0.1.0"


def version() -> str:
    """The installed distribution's version (what pip installed), else the source tree's."""
    try:
        return importlib.metadata.version("registry-auth-proxy")
    except importlib.metadata.PackageNotFoundError:
        return __version__
