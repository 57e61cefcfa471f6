"""Operations shared by the server and the CLI, with no aiohttp: maintenance, gc, the pid file, the backend's verdict.

The CLI switches maintenance on and waits for writes in flight; the server
reads the same file. Both import this package, so the file's format has one
owner.
"""

__all__ = ["backend", "gc", "instance", "maintenance"]
