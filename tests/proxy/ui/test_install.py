"""Where the catalog is mounted: ``ui.enabled``, ``ui.path``, ``/`` and the API left as it was."""

from __future__ import annotations

from tests.proxy.ui.conftest import MakeUI
from tests.proxy.ui.fakeregistry import FakeDistribution


async def test_disabled_the_catalog_does_not_exist(make_ui: MakeUI) -> None:
    world = await make_ui(FakeDistribution(), ui={"enabled": False})
    browser = world.browser()
    for path in ("/", "/ui/", "/ui/signin"):
        page = await browser.get(path)
        assert page.status == 404 and page.headers["Content-Type"].startswith("application/json"), path


async def test_another_path_moves_every_link_and_cookie(make_ui: MakeUI) -> None:
    backend = FakeDistribution()
    backend.push_image("team/app", "1.0")
    world = await make_ui(backend, ui={"path": "/registry/browse/"})
    browser = world.browser()
    root = await browser.get("/")
    assert root.status == 302 and root.headers["Location"] == "/registry/browse/"
    page = await browser.get("/registry/browse/")
    assert page.status == 200 and 'href="/registry/browse/r/team/app"' in page.text
    assert 'src="/registry/browse/static/ui.' in page.text
    assert (await browser.get("/ui/")).status == 404
    form = await browser.get("/registry/browse/signin")
    async with world.client.post("/registry/browse/signin", data={
            "user": "mark", "password": "pusherpwd", "csrf": form.csrf(), "next": "/registry/browse/r/team/app"},
            headers=browser._headers(None), allow_redirects=False) as resp:
        assert resp.headers["Location"] == "/registry/browse/r/team/app"
        assert all("Path=/registry/browse/" in c for c in resp.headers.getall("Set-Cookie"))


async def test_the_api_is_untouched_beside_the_catalog(make_ui: MakeUI) -> None:
    backend = FakeDistribution()
    backend.push_image("team/app", "1.0")
    world = await make_ui(backend)
    async with world.client.get("/v2/team/app/tags/list") as resp:
        assert resp.status == 200 and (await resp.json())["tags"] == ["1.0"]
        assert "Content-Security-Policy" not in resp.headers
    async with world.client.post("/") as resp:  # only GET and HEAD of / are redirected
        assert resp.status == 404 and resp.headers["Content-Type"].startswith("application/json")


async def test_catalog_requests_are_rate_limited_like_api_requests(make_ui: MakeUI) -> None:
    world = await make_ui(FakeDistribution(), limits={"requests_per_second": 1, "requests_burst": 2})
    browser = world.browser()
    statuses = [(await browser.get("/ui/signin")).status for _ in range(4)]
    assert statuses[:2] == [200, 200] and 429 in statuses[2:]


async def test_an_oversized_form_is_a_readable_refusal(make_ui: MakeUI) -> None:
    world = await make_ui(FakeDistribution())
    browser = world.browser()
    page = await browser.post("/ui/signin", {"user": "x" * 100_000, "password": "y"})
    assert page.status == 413 and page.headers["Content-Type"].startswith("text/html")
