"""What pages cost: backend requests per digest (the cache), catalog paging, and the page-weight budget.

Budget (uncompressed, what a first visit downloads): CSS + JS at most
8 KiB together; a catalog page of 100 names at most 24 KiB of HTML; a
repository page of 100 tags at most 64 KiB of HTML. No images, fonts or
third-party files exist to add to that (one 200-byte icon).
"""

from __future__ import annotations

import re
import time

from proxy.ui.backend import CATALOG_PAGE
from proxy.ui.state import UI_STATE
from tests.proxy.ui.conftest import MakeUI
from tests.proxy.ui.fakeregistry import FakeDistribution, _error

ASSETS_BUDGET = 8 * 1024
CATALOG_BUDGET = 24 * 1024
REPOSITORY_BUDGET = 64 * 1024


def hundred_tags() -> tuple[FakeDistribution, int, int]:
    """100 tags over 30 images and 5 two-platform indexes; returns (backend, manifests, configs) to fetch."""
    backend = FakeDistribution()
    images = [backend.push_image("team/app", f"1.{i}", layers=(500, 700), config={"n": i}) for i in range(30)]
    arm = [backend.push_image("team/app", "", arch="arm64", config={"n": i}) for i in range(5)]
    for i in range(5):
        backend.push_index("team/app", f"multi-{i}", {"linux/amd64": images[i], "linux/arm64": arm[i]})
    for i in range(65):  # the rest point at digests already tagged
        backend.tags["team/app"][f"alias-{i}"] = images[i % 30]
    assert len(backend.tags["team/app"]) == 100
    return backend, 30 + 5 + 5, 30 + 5


async def test_a_page_of_100_tags_fetches_each_digest_once_ever(make_ui: MakeUI) -> None:
    backend, manifests, configs = hundred_tags()
    world = await make_ui(backend)
    browser = world.browser()
    page = await browser.get("/ui/r/team/app")
    assert page.status == 200 and page.text.count("<tr data-name=") == 100
    assert backend.count("HEAD", "manifests") == 100  # tags move: resolved on every view
    assert backend.count("GET", "manifests") == manifests
    assert backend.count("GET", "blobs") == configs
    again = await browser.get("/ui/r/team/app")
    assert again.text.count("<tr data-name=") == 100
    assert backend.count("HEAD", "manifests") == 200
    assert (backend.count("GET", "manifests"), backend.count("GET", "blobs")) == (manifests, configs)
    await browser.get("/ui/r/team/app/-/tag/multi-0")  # its index and platforms are cached too
    assert (backend.count("GET", "manifests"), backend.count("GET", "blobs")) == (manifests, configs)
    cache = world.client.server.app[UI_STATE].cache
    assert len(cache) == manifests + configs and cache.hits > 0
    assert all("authorization" not in s.headers and "cookie" not in s.headers for s in backend.seen)


async def test_a_large_catalog_pages_and_filters(make_ui: MakeUI) -> None:
    backend = FakeDistribution(names=[f"group{i % 7}/repo-{i:04d}" for i in range(1050)])
    world = await make_ui(backend)
    browser = world.browser()
    first = await browser.get("/ui/")
    assert "1,050 repositories" in first.text and first.text.count("<li data-name=") == 100
    assert "Page 1 of 11" in first.text
    last = await browser.get("/ui/?page=11")
    assert last.text.count("<li data-name=") == 50 and "← Previous" in last.text and "Next →" not in last.text
    assert (await browser.get("/ui/?page=999")).text.count("<li data-name=") == 50  # clamped to the last page
    filtered = await browser.get("/ui/?q=REPO-000")
    assert "10 of 1,050 repositories match" in filtered.text and filtered.text.count("<li data-name=") == 10
    catalog_calls = [s.path for s in backend.seen if "_catalog" in s.path]
    assert len(catalog_calls) == 4 * 2 and all(f"n={CATALOG_PAGE}" in c for c in catalog_calls)  # 2 per view


async def test_a_registry_with_a_smaller_page_limit_is_walked_at_its_own_size(make_ui: MakeUI) -> None:
    backend = FakeDistribution(names=[f"r{i:03d}" for i in range(250)])
    original = backend._catalog

    def small(request):  # type: ignore[no-untyped-def]
        if int(request.query.get("n", "100")) > 100:
            return _error(400, "PAGINATION_NUMBER_INVALID")
        return original(request)

    backend._catalog = small  # type: ignore[method-assign]
    world = await make_ui(backend)
    page = await world.browser().get("/ui/")
    assert page.status == 200 and "250 repositories" in page.text


async def test_page_weight_budget_and_render_time_of_1000_repositories(make_ui: MakeUI) -> None:
    backend, _, _ = hundred_tags()
    backend.names = [f"team{i % 10}/service-{i:04d}" for i in range(1000)]
    world = await make_ui(backend)
    browser = world.browser()
    started = time.perf_counter()
    catalog = await browser.get("/ui/")
    elapsed = time.perf_counter() - started
    assert "1,001 repositories" in catalog.text
    repository = await browser.get("/ui/r/team/app")
    assets = world.client.server.app[UI_STATE].assets
    weights = {"assets": assets.weight, "catalog": len(catalog.text.encode()),
               "repository": len(repository.text.encode())}
    print(f"\nweights (bytes): {weights}; catalog of 1,001 repositories rendered in {elapsed * 1000:.0f} ms "
          f"(fake registry, in-process)")
    assert weights["assets"] <= ASSETS_BUDGET
    assert weights["catalog"] <= CATALOG_BUDGET
    assert weights["repository"] <= REPOSITORY_BUDGET
    urls = re.findall(r'(?:href|src)="(/ui/static/[^"]+)"', catalog.text)
    assert len(urls) == 3  # icon, stylesheet, script: nothing else is loaded
