"""Process control: listeners, TLS, signals, reload, drain.

``aiohttp_seams`` is the one module that extends aiohttp below its
application API; nothing else in the project touches aiohttp internals.
"""

from proxy.server.lifecycle import serve

__all__ = ["serve"]
