"""In-process catalog tests: the real app (with ``proxy.ui`` installed) before a :class:`FakeDistribution`.

Cookies are kept by :class:`Browser` by hand: the session cookie is
``Secure`` and the in-process server is plain HTTP, where aiohttp's own
cookie jar (rightly) would not send it back.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from proxy.config import parse_config
from proxy.http import create_app
from proxy.ui import install
from tests.proxy.http.conftest import write_users
from tests.proxy.ui.fakeregistry import FakeDistribution

ACCESS = {"pull": "anyone", "push": ["pusher"], "delete": ["pusher"],
          "repositories": [{"match": "private/**", "pull": "users"}]}
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Page:
    status: int
    headers: Any
    text: str

    def csrf(self) -> str:
        match = CSRF.search(self.text)
        assert match is not None, "the page has no form token"
        return match.group(1)


@dataclass
class Browser:
    """One browser: its own cookies, sent back on every request (Secure or not)."""

    client: TestClient
    cookies: dict[str, str] = field(default_factory=dict)

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = dict(extra or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return headers

    async def _page(self, resp: ClientResponse) -> Page:
        for name, morsel in resp.cookies.items():
            if morsel["max-age"] == "0" or not morsel.value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = morsel.value
        return Page(resp.status, resp.headers, await resp.text())

    async def get(self, path: str, headers: dict[str, str] | None = None) -> Page:
        async with self.client.get(path, headers=self._headers(headers), allow_redirects=False) as resp:
            return await self._page(resp)

    async def post(self, path: str, data: dict[str, str], headers: dict[str, str] | None = None) -> Page:
        async with self.client.post(path, data=data, headers=self._headers(headers), allow_redirects=False) as resp:
            return await self._page(resp)

    async def sign_in(self, user: str, password: str) -> Page:
        form = await self.get("/ui/signin")
        return await self.post("/ui/signin", {"user": user, "password": password, "csrf": form.csrf(),
                                              "next": "/ui/"})


@dataclass
class UIWorld:
    client: TestClient
    backend: FakeDistribution
    folder: Path

    def browser(self) -> Browser:
        return Browser(self.client)


MakeUI = Callable[..., Awaitable[UIWorld]]


@pytest.fixture
def make_ui(tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient]],
            aiohttp_server: Callable[..., Awaitable[TestServer]]) -> MakeUI:
    """``await make_ui(backend=None, **config)``: the real app with the catalog, before a fake registry."""

    async def make(backend: FakeDistribution | None = None, backend_url: str | None = None,
                   **config: Any) -> UIWorld:
        backend = backend if backend is not None else FakeDistribution()
        if backend_url is None:
            server = await aiohttp_server(backend.app())
            backend_url = f"http://127.0.0.1:{server.port}"
        write_users(tmp_path)
        data: dict[str, Any] = {"backend": backend_url, "admin": "off", "tls": "off", "access": ACCESS,
                                "auth": {"token": {"service": "test"}}, **config}
        app = create_app(parse_config(data, tmp_path / "proxy.yml"), extend=install)
        client = await aiohttp_client(app, cookie_jar=aiohttp.DummyCookieJar())
        return UIWorld(client, backend, tmp_path)

    return make
