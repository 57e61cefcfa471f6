"""The public app on aiohttp's public API: route, identify, decide, forward, stream back.

``create_app`` builds it; ``build_runtime`` builds what its handlers need
(used by start-up and by reload); ``keys`` names everything stored on the
app and its requests; ``errors`` renders every answer the proxy makes itself.
"""

from proxy.http.app import create_app
from proxy.http.runtime import Live, Runtime, Stats, build_runtime, new_session

__all__ = ["Live", "Runtime", "Stats", "build_runtime", "create_app", "new_session"]
