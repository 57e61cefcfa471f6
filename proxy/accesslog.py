"""One access-log line per request: client, user, method, path, status, bytes, ms.

The user is the name the gate established, never what the client claimed,
and no header is logged, so passwords and tokens cannot appear here.
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

USER_KEY = "registry_auth_proxy.user"


class AccessLogger(AbstractAccessLogger):
    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        user = request.get(USER_KEY) or "-"
        path = request.raw_path if request.path.startswith("/v2") else request.path
        self.logger.info(
            '%s %s "%s %s" %d %d %.1fms',
            request.remote or "-",
            user,
            request.method,
            path,
            response.status,
            response.body_length,
            time * 1000,
        )


access_log = logging.getLogger("registry_auth_proxy.access")
