"""``GET /v2/_catalog`` in-process: the real app before a fake registry that pages like distribution 2.8.

The paging logic itself is property-tested in ``tests/auth/test_catalog.py``;
here: who sees what, the wire format (body, Content-Type, relative Link),
what reaches the backend, and every way the backend can fail.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.http.catalog import MAX_PAGE_BYTES
from tests.proxy.http.conftest import World
from tests.proxy.http.test_app import basic

MakeWorld = Callable[..., Awaitable[World]]
MakeServer = Callable[..., Awaitable[TestServer]]
ACCESS = {"pull": "anyone", "push": ["pusher"], "delete": ["pusher"],
          "repositories": [{"match": "private/**", "pull": "users"}, {"match": "vault/**", "pull": ["pusher"]}]}
NAMES = ["alpha", "private/app", "private/db", "public/one", "vault/secret", "zeta"]
READER = basic("reader", "readerpwd")
MARK = basic("mark", "pusherpwd")


def order(name: str) -> str:
    return name.replace("/", "\x00")


@dataclass
class Distribution:
    """Pages ``names`` as distribution 2.8 does; or answers ``reply`` instead, when set."""

    names: list[str]
    reply: Callable[[web.Request], Awaitable[web.StreamResponse]] | None = None
    seen: list[web.Request] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(request)
        if self.reply is not None:
            return await self.reply(request)
        n_text = request.query.get("n")
        n = int(n_text) if n_text else 100
        if n > 1000:
            body = b'{"errors":[{"code":"PAGINATION_NUMBER_INVALID","message":"invalid number of results ' \
                b'requested","detail":{"n":%d}}]}\n' % n
            return web.Response(status=400, body=body, headers={"Content-Type": "application/json; charset=utf-8"})
        last = request.query.get("last")
        after = [x for x in sorted(self.names, key=order) if last is None or order(x) > order(last)]
        headers = {}
        if len(after) > n > 0:
            headers["Link"] = f'</v2/_catalog?last={after[n - 1]}&n={n}>; rel="next"'
        return web.json_response({"repositories": after[:n]}, headers=headers)

    def paths(self) -> list[str]:
        return [r.raw_path for r in self.seen]


async def start(make_world: MakeWorld, aiohttp_server: MakeServer, backend: Distribution,
                **config: Any) -> World:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", backend.handle)
    server = await aiohttp_server(app)
    return await make_world(backend_url=f"http://127.0.0.1:{server.port}", access=ACCESS, **config)


async def listing(world: World, path: str = "/v2/_catalog", headers: dict[str, str] | None = None) -> list[str]:
    resp = await world.client.get(path, headers=headers)
    assert resp.status == 200, await resp.text()
    return list((await resp.json())["repositories"])


async def test_each_caller_sees_only_what_it_may_pull(make_world: MakeWorld, aiohttp_server: MakeServer) -> None:
    backend = Distribution(NAMES)
    world = await start(make_world, aiohttp_server, backend)
    assert await listing(world) == ["alpha", "public/one", "zeta"]
    assert await listing(world, headers=READER) == ["alpha", "private/app", "private/db", "public/one", "zeta"]
    assert await listing(world, headers=MARK) == NAMES
    assert all("authorization" not in {k.lower() for k in r.headers} for r in backend.seen)


async def test_a_bearer_token_sees_its_subjects_view(make_world: MakeWorld, aiohttp_server: MakeServer) -> None:
    world = await start(make_world, aiohttp_server, Distribution(NAMES))
    resp = await world.client.get("/token?service=test&scope=registry:catalog:*", headers=READER)
    assert resp.status == 200
    token = (await resp.json())["token"]
    assert await listing(world, headers={"Authorization": f"Bearer {token}"}) == \
        ["alpha", "private/app", "private/db", "public/one", "zeta"]


async def test_wire_format_and_links_page_across_hidden_names(make_world: MakeWorld,
                                                              aiohttp_server: MakeServer) -> None:
    backend = Distribution(NAMES)
    world = await start(make_world, aiohttp_server, backend)
    resp = await world.client.get("/v2/_catalog?n=1&last=alpha")
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert resp.headers["Link"] == '</v2/_catalog?last=public%2Fone&n=1>; rel="next"'
    assert resp.headers["Cache-Control"] == "no-store"
    assert await resp.json() == {"repositories": ["public/one"]}
    assert backend.paths() == ["/v2/_catalog?last=alpha&n=1", "/v2/_catalog?last=private%2Fapp&n=1",
                               "/v2/_catalog?last=private%2Fdb&n=1"]
    for n, pages in ((1, [["alpha"], ["public/one"], ["zeta"]]), (2, [["alpha", "public/one"], ["zeta"]])):
        got, path = [], f"/v2/_catalog?n={n}"
        while True:
            resp = await world.client.get(path)
            got.append((await resp.json())["repositories"])
            if "Link" not in resp.headers:
                break
            path = resp.headers["Link"].split(">")[0].lstrip("<")
        assert got == pages


async def test_a_hidden_stretch_is_bounded_per_request_and_the_link_moves_past_it(
        make_world: MakeWorld, aiohttp_server: MakeServer) -> None:
    backend = Distribution([f"vault/s{i:03d}" for i in range(200)] + ["zeta"])
    world = await start(make_world, aiohttp_server, backend)
    resp = await world.client.get("/v2/_catalog?n=5")
    assert await resp.json() == {"repositories": []}
    link = resp.headers["Link"]
    assert link.startswith("</v2/_catalog?last=~") and link.endswith('&n=5>; rel="next"')
    assert "vault" not in link  # the resume point is a hidden name: sealed, never in clear
    assert len(backend.seen) == 10
    backend.seen.clear()
    resp = await world.client.get(link.split(">")[0].lstrip("<"))
    assert await resp.json() == {"repositories": []}
    assert backend.paths()[0] == "/v2/_catalog?last=vault%2Fs049&n=5"  # 10 pages of 5 were scanned before
    assert await listing(world, "/v2/_catalog?n=1000") == ["zeta"]


async def test_a_cursor_this_proxy_cannot_open_is_a_400(make_world: MakeWorld, aiohttp_server: MakeServer) -> None:
    backend = Distribution(NAMES)
    world = await start(make_world, aiohttp_server, backend)
    resp = await world.client.get("/v2/_catalog?n=5&last=~AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    assert resp.status == 400
    assert "from the start" in (await resp.json())["errors"][0]["message"]
    assert backend.seen == []


async def test_n_zero_is_empty_without_a_link_or_a_backend_request(make_world: MakeWorld,
                                                                   aiohttp_server: MakeServer) -> None:
    backend = Distribution(NAMES)
    world = await start(make_world, aiohttp_server, backend)
    resp = await world.client.get("/v2/_catalog?n=0")
    assert await resp.json() == {"repositories": []} and "Link" not in resp.headers
    assert backend.seen == []


async def test_invalid_n_means_the_default_and_is_not_sent_on(make_world: MakeWorld,
                                                              aiohttp_server: MakeServer) -> None:
    backend = Distribution(NAMES)
    world = await start(make_world, aiohttp_server, backend)
    assert await listing(world, "/v2/_catalog?n=-3") == ["alpha", "public/one", "zeta"]
    assert backend.paths() == ["/v2/_catalog"]


async def test_a_backend_refusal_is_passed_through(make_world: MakeWorld, aiohttp_server: MakeServer) -> None:
    world = await start(make_world, aiohttp_server, Distribution(NAMES))
    resp = await world.client.get("/v2/_catalog?n=1001")
    assert resp.status == 400
    assert resp.headers["Content-Type"] == "application/json; charset=utf-8"
    assert await resp.read() == b'{"errors":[{"code":"PAGINATION_NUMBER_INVALID","message":"invalid number ' \
        b'of results requested","detail":{"n":1001}}]}\n'  # byte for byte


async def test_the_page_is_fetched_uncompressed_with_forwarding_headers(make_world: MakeWorld,
                                                                        aiohttp_server: MakeServer) -> None:
    backend = Distribution(NAMES)
    world = await start(make_world, aiohttp_server, backend)
    await listing(world, headers={"Accept-Encoding": "gzip", "X-Forwarded-For": "6.6.6.6", **READER})
    (seen,) = backend.seen
    assert seen.headers.getall("Accept-Encoding") == ["identity"]
    assert seen.headers.getall("X-Forwarded-For") == ["127.0.0.1"]


async def test_backend_down_or_silent_is_the_forwarders_502_and_504(make_world: MakeWorld,
                                                                    aiohttp_server: MakeServer) -> None:
    async def slow(request: web.Request) -> web.StreamResponse:
        import asyncio

        await asyncio.sleep(2)
        return web.json_response({"repositories": []})

    silent = await start(make_world, aiohttp_server, Distribution([], reply=slow), timeouts={"read": 0.3})
    resp = await silent.client.get("/v2/_catalog")
    assert resp.status == 504
    forwarded = await silent.client.get("/v2/alpha/tags/list")  # the same situation, through the forwarder
    assert (resp.status, await resp.json()) == (forwarded.status, await forwarded.json())


async def test_refused_backend_is_the_forwarders_502(make_world: MakeWorld) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    world = await make_world(backend_url=f"http://127.0.0.1:{port}")
    resp = await world.client.get("/v2/_catalog")
    forwarded = await world.client.get("/v2/alpha/tags/list")
    assert resp.status == 502
    assert await resp.json() == await forwarded.json()


async def test_a_page_over_the_cap_or_not_a_catalog_is_502(make_world: MakeWorld,
                                                           aiohttp_server: MakeServer) -> None:
    big = b'{"repositories":["' + b"a" * MAX_PAGE_BYTES + b'"]}'

    async def sized(request: web.Request) -> web.StreamResponse:
        return web.Response(body=big, content_type="application/json")

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i in range(0, len(big), 1 << 20):
            await response.write(big[i:i + (1 << 20)])
        await response.write_eof()
        return response

    async def garbage(request: web.Request) -> web.StreamResponse:
        return web.Response(text="<html>not a catalog</html>", content_type="text/html")

    for reply, words in ((sized, "over 8 MiB"), (chunked, "over 8 MiB"), (garbage, "cannot read")):
        world = await start(make_world, aiohttp_server, Distribution([], reply=reply))
        resp = await world.client.get("/v2/_catalog")
        assert resp.status == 502
        assert words in (await resp.json())["errors"][0]["message"]


async def test_head_is_still_forwarded(make_world: MakeWorld, aiohttp_server: MakeServer) -> None:
    backend = Distribution(NAMES)
    world = await start(make_world, aiohttp_server, backend)
    resp = await world.client.head("/v2/_catalog")
    assert resp.status == 200 and [r.method for r in backend.seen] == ["HEAD"]
