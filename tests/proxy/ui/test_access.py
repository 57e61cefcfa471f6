"""What each visitor sees and may do, judged by the API's own policy code; deletes and their refusals."""

from __future__ import annotations

from tests.proxy.ui.conftest import MakeUI
from tests.proxy.ui.fakeregistry import FakeDistribution

DELETE_BUTTON = 'class="button danger"'


def registry() -> tuple[FakeDistribution, str]:
    backend = FakeDistribution()
    digest = backend.push_image("team/app", "1.0")
    backend.tags["team/app"]["stable"] = digest  # two tags on one digest
    backend.push_image("team/app", "2.0")
    backend.push_image("private/secret", "v1")
    return backend, digest


def catalog_names(text: str) -> list[str]:
    return [part.split('"')[0] for part in text.split('<li data-name="')[1:]]


async def test_anonymous_visitors_see_only_public_repositories(make_ui: MakeUI) -> None:
    backend, _ = registry()
    world = await make_ui(backend)
    browser = world.browser()
    catalog = await browser.get("/ui/")
    assert catalog_names(catalog.text) == ["team/app"] and "1 repository" in catalog.text
    hidden = await browser.get("/ui/r/private/secret")
    assert hidden.status == 404 and "Sign in" in hidden.text
    assert (await browser.get("/ui/r/private/secret/-/tag/v1")).status == 404
    assert not any("private" in s.path for s in backend.seen if "_catalog" not in s.path)
    repository = await browser.get("/ui/r/team/app")
    assert DELETE_BUTTON not in repository.text  # anonymous may not delete: no button


async def test_signed_in_users_see_what_their_groups_may_pull(make_ui: MakeUI) -> None:
    backend, _ = registry()
    world = await make_ui(backend)
    browser = world.browser()
    assert (await browser.sign_in("reader", "readerpwd")).status == 303
    catalog = await browser.get("/ui/")
    assert catalog_names(catalog.text) == ["private/secret", "team/app"]
    assert "Signed in as <b>reader</b>" in catalog.text
    assert (await browser.get("/ui/r/private/secret")).status == 200
    assert DELETE_BUTTON not in (await browser.get("/ui/r/team/app")).text  # reader is not in pusher


async def test_a_catalog_closed_to_anonymous_asks_to_sign_in(make_ui: MakeUI) -> None:
    backend, _ = registry()
    world = await make_ui(backend, access={"pull": "anyone", "catalog": "users", "push": ["pusher"],
                                           "delete": ["pusher"]})
    browser = world.browser()
    page = await browser.get("/ui/")
    assert page.status == 403 and "signin" in page.text
    assert not any("_catalog" in s.path for s in backend.seen)
    await browser.sign_in("reader", "readerpwd")
    assert (await browser.get("/ui/")).status == 200


async def test_a_member_with_delete_rights_deletes_a_digest_and_its_tags(make_ui: MakeUI) -> None:
    backend, digest = registry()
    world = await make_ui(backend)
    browser = world.browser()
    await browser.sign_in("mark", "pusherpwd")
    repository = await browser.get("/ui/r/team/app")
    assert f"/ui/r/team/app/-/delete?digest=sha256%3A{digest[7:]}" in repository.text
    confirm = await browser.get(f"/ui/r/team/app/-/delete?digest={digest}")
    assert confirm.status == 200
    assert "<code>team/app:1.0</code>" in confirm.text and "<code>team/app:stable</code>" in confirm.text
    assert "team/app:2.0" not in confirm.text and "Delete 2 tags" in confirm.text
    done = await browser.post("/ui/r/team/app/-/delete", {"digest": digest, "csrf": confirm.csrf()})
    assert done.status == 303 and done.headers["Location"] == f"/ui/r/team/app?deleted=sha256%3A{digest[7:]}"
    deletes = [s for s in backend.seen if s.method == "DELETE"]
    assert [s.path for s in deletes] == [f"/v2/team/app/manifests/{digest}"]
    assert all("authorization" not in s.headers and "cookie" not in s.headers for s in backend.seen)
    after = await browser.get(done.headers["Location"])
    assert "Deleted " + digest in after.text and ">1.0<" not in after.text and ">2.0<" in after.text


async def test_deletes_are_refused_without_rights_a_token_or_the_same_origin(make_ui: MakeUI) -> None:
    backend, digest = registry()
    world = await make_ui(backend)
    reader = world.browser()
    await reader.sign_in("reader", "readerpwd")
    page = await reader.get("/ui/")
    assert (await reader.get(f"/ui/r/team/app/-/delete?digest={digest}")).status == 403
    refused = await reader.post("/ui/r/team/app/-/delete", {"digest": digest, "csrf": page.csrf()})
    assert refused.status == 403 and "reader" in refused.text
    mark = world.browser()
    await mark.sign_in("mark", "pusherpwd")
    token = (await mark.get("/ui/")).csrf()
    assert (await mark.post("/ui/r/team/app/-/delete", {"digest": digest})).status == 403
    assert (await mark.post("/ui/r/team/app/-/delete", {"digest": digest, "csrf": page.csrf()})).status == 403
    cross = await mark.post("/ui/r/team/app/-/delete", {"digest": digest, "csrf": token},
                            headers={"Origin": "https://evil.example"})
    assert cross.status == 403
    fetched = await mark.post("/ui/r/team/app/-/delete", {"digest": digest, "csrf": token},
                              headers={"Sec-Fetch-Site": "cross-site"})
    assert fetched.status == 403
    anonymous = world.browser()
    page = await anonymous.get("/ui/signin")
    assert (await anonymous.post("/ui/r/team/app/-/delete", {"digest": digest, "csrf": page.csrf()})).status == 403
    assert not [s for s in backend.seen if s.method == "DELETE"]
    ok = await mark.post("/ui/r/team/app/-/delete", {"digest": digest, "csrf": token},
                         headers={"Origin": str(world.client.make_url("/")).rstrip("/")})
    assert ok.status == 303


async def test_delete_disabled_in_the_registry_says_how_to_enable_it(make_ui: MakeUI) -> None:
    backend, digest = registry()
    backend.delete_enabled = False
    world = await make_ui(backend)
    browser = world.browser()
    await browser.sign_in("mark", "pusherpwd")
    token = (await browser.get("/ui/")).csrf()
    page = await browser.post("/ui/r/team/app/-/delete", {"digest": digest, "csrf": token})
    assert page.status == 405 and "REGISTRY_STORAGE_DELETE_ENABLED=true" in page.text


async def test_maintenance_refuses_a_delete_before_the_registry_sees_it(make_ui: MakeUI) -> None:
    backend, digest = registry()
    world = await make_ui(backend)
    browser = world.browser()
    await browser.sign_in("mark", "pusherpwd")
    token = (await browser.get("/ui/")).csrf()
    (world.folder / "maintenance").write_text("gc running\n")
    page = await browser.post("/ui/r/team/app/-/delete", {"digest": digest, "csrf": token})
    assert page.status == 423 and "<h1>Read-only for maintenance</h1>" in page.text
    assert not [s for s in backend.seen if s.method == "DELETE"]


async def test_a_registry_that_is_down_is_a_readable_page(make_ui: MakeUI) -> None:
    world = await make_ui(backend_url="http://127.0.0.1:9")  # discard port: nothing listens
    page = await world.browser().get("/ui/")
    assert page.status == 502 and "unreachable" in page.text and page.headers["Content-Type"].startswith("text/html")
