"""What the registry's answer to ``GET /v2/`` says about it as the proxy's backend.

``check-config`` (urllib: it must not import aiohttp) and ``/readyz`` (the
proxy's own pool) ask the same question with different clients; the verdict
and its words live here so that both say the same sentence.

Only 200 will do. The common failure is 401: Debian's stock
``/etc/docker/registry/config.yml`` enables htpasswd auth, so the registry
challenges every request the proxy has already authorised, and every pull
and push through the proxy fails, although the backend "answers".
"""

from __future__ import annotations

__all__ = ["backend_problem"]


def backend_problem(backend: str, status: int) -> str | None:
    """None when ``status`` (the backend's answer to ``GET /v2/``) is what a usable registry answers."""
    if status == 200:
        return None
    if status == 401:
        return (f"backend {backend} demands its own auth (GET /v2/ answered 401), so every request through "
                "the proxy fails: remove the `auth:` section from the registry's config.yml "
                "(Debian: /etc/docker/registry/config.yml) and restart the registry; the proxy does the auth")
    return f"backend {backend} answered GET /v2/ with {status}, not 200: is it a registry, and healthy?"
