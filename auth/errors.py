"""The one error type: every answer the proxy makes itself instead of forwarding.

A route that does not exist, a refused login, maintenance, a backend that is
down: each is a :class:`ProxyError` carrying the HTTP status, the registry
error code, our own message and any extra headers. It is raised where the
decision is made and rendered in one place (``proxy.http.errors``), so every
proxy-made answer has the same JSON shape and headers.

It is a plain ``Exception`` subclass on purpose: a frozen dataclass exception
cannot pass through ``contextlib.contextmanager`` (setting ``__traceback__``
on it raises ``FrozenInstanceError``).
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ProxyError"]


class ProxyError(Exception):
    """Status, registry error code, message and headers of a proxy-made answer.

    Messages are our own words and say what to do. That matters beyond style:
    docker retries a 401/403 for about 50 s when the message equals the
    spec's stock text, and fails at once with our text shown when it does not.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    def __reduce__(self) -> tuple[type[ProxyError], tuple[int, str, str, dict[str, str]]]:
        """Copy and pickle rebuild it whole (``args`` holds only the message)."""
        return (type(self), (self.status, self.code, self.message, self.headers))

    def __repr__(self) -> str:
        return f"ProxyError({self.status}, {self.code!r}, {self.message!r})"
