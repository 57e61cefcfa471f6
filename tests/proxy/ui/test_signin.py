"""Signing in and out: the cookie's attributes, throttling, no open redirect; a session opens nothing in /v2."""

from __future__ import annotations

import bcrypt

from proxy.http.keys import LIVE
from proxy.ui.visit import SESSION_COOKIE
from tests.proxy.ui.conftest import MakeUI
from tests.proxy.ui.fakeregistry import FakeDistribution


def registry() -> FakeDistribution:
    backend = FakeDistribution()
    backend.push_image("private/secret", "v1")
    backend.push_image("team/app", "1.0")
    return backend


async def test_sign_in_sets_a_strict_http_only_secure_cookie_scoped_to_the_catalog(make_ui: MakeUI) -> None:
    world = await make_ui(registry(), ui={"session_ttl": 600})
    browser = world.browser()
    form = await browser.get("/ui/signin?next=/ui/r/private/secret")
    assert 'name="next" value="/ui/r/private/secret"' in form.text
    async with world.client.post("/ui/signin", data={"user": "reader", "password": "readerpwd", "csrf": form.csrf(),
                                                     "next": "/ui/r/private/secret"},
                                 headers=browser._headers(None), allow_redirects=False) as resp:
        assert resp.status == 303 and resp.headers["Location"] == "/ui/r/private/secret"
        cookie = next(v for v in resp.headers.getall("Set-Cookie") if v.startswith(SESSION_COOKIE))
    attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
    assert {"httponly", "secure", "samesite", "path", "max-age"} <= set(attributes)
    assert attributes["samesite"].lower() == "samesite=strict"
    assert attributes["path"] == "Path=/ui/" and attributes["max-age"] == "Max-Age=600"
    assert "readerpwd" not in cookie


async def test_wrong_passwords_are_refused_and_throttled_like_every_login(make_ui: MakeUI) -> None:
    world = await make_ui(registry(), throttle={"failures": 2, "window": 300})
    browser = world.browser()
    for _ in range(2):
        page = await browser.sign_in("reader", "wrong")
        assert page.status == 403 and "Wrong user name or password." in page.text
        assert "wrong" not in page.text.replace("Wrong", "")  # the password is never echoed
        assert SESSION_COOKIE not in browser.cookies
    throttled = await browser.sign_in("reader", "readerpwd")  # even the right password, now
    assert throttled.status == 429 and "Retry-After" in throttled.headers
    assert SESSION_COOKIE not in browser.cookies
    other = world.browser()
    assert (await other.sign_in("mark", "pusherpwd")).status == 303  # another user from here is not locked out


async def test_a_form_without_its_token_or_from_elsewhere_is_refused(make_ui: MakeUI) -> None:
    world = await make_ui(registry())
    browser = world.browser()
    form = await browser.get("/ui/signin")
    data = {"user": "reader", "password": "readerpwd", "next": "/ui/"}
    assert (await browser.post("/ui/signin", data)).status == 403
    assert (await browser.post("/ui/signin", {**data, "csrf": "x" * 43})).status == 403
    stranger = world.browser()  # a token is bound to the browser it was made for
    assert (await stranger.post("/ui/signin", {**data, "csrf": form.csrf()})).status == 403
    cross = await browser.post("/ui/signin", {**data, "csrf": form.csrf()}, headers={"Origin": "null"})
    assert cross.status == 403
    assert SESSION_COOKIE not in browser.cookies and SESSION_COOKIE not in stranger.cookies


async def test_no_open_redirect_after_sign_in(make_ui: MakeUI) -> None:
    world = await make_ui(registry())
    for target in ("//evil.example/", "https://evil.example/ui/", "/\\evil.example", "/v2/_catalog",
                   "javascript:alert(1)", "/ui/%2f%2fevil"):
        browser = world.browser()
        form = await browser.get("/ui/signin?next=" + target)
        assert 'name="next" value="/ui/"' in form.text
        done = await browser.post("/ui/signin", {"user": "reader", "password": "readerpwd", "csrf": form.csrf(),
                                                 "next": target})
        assert done.status == 303 and done.headers["Location"] == "/ui/", target


async def test_sign_out_needs_the_token_and_ends_the_session(make_ui: MakeUI) -> None:
    world = await make_ui(registry())
    browser = world.browser()
    await browser.sign_in("reader", "readerpwd")
    page = await browser.get("/ui/")
    assert "Sign out" in page.text
    assert (await browser.post("/ui/signout", {})).status == 403
    assert (await browser.get("/ui/signout")).status == 405
    out = await browser.post("/ui/signout", {"csrf": page.csrf()})
    assert out.status == 303 and out.headers["Location"] == "/ui/"
    assert SESSION_COOKIE not in browser.cookies
    assert "private/secret" not in (await browser.get("/ui/")).text


async def test_the_session_cookie_is_never_accepted_by_the_api(make_ui: MakeUI) -> None:
    backend = registry()
    world = await make_ui(backend)
    browser = world.browser()
    await browser.sign_in("reader", "readerpwd")
    assert (await browser.get("/ui/r/private/secret")).status == 200
    before = len(backend.seen)
    for path in ("/v2/private/secret/tags/list", "/v2/private/secret/manifests/v1"):
        async with world.client.get(path, headers=browser._headers(None)) as resp:
            assert resp.status == 401 and "WWW-Authenticate" in resp.headers
    assert len(backend.seen) == before  # refused by the gate: nothing reached the registry
    async with world.client.get("/v2/_catalog", headers=browser._headers(None)) as resp:
        assert (await resp.json())["repositories"] == ["team/app"]  # the API's catalog: anonymous
    assert all("cookie" not in s.headers for s in backend.seen)


async def test_a_changed_password_or_a_forged_cookie_ends_the_session(make_ui: MakeUI) -> None:
    world = await make_ui(registry())
    browser = world.browser()
    await browser.sign_in("reader", "readerpwd")
    assert "Signed in as" in (await browser.get("/ui/")).text
    sealed = browser.cookies[SESSION_COOKIE]
    payload, signature = sealed.split(".")
    browser.cookies[SESSION_COOKIE] = payload[:-2] + ("AA" if payload[-2:] != "AA" else "BB") + "." + signature
    page = await browser.get("/ui/")
    assert "Signed in as" not in page.text and SESSION_COOKIE not in browser.cookies  # and the cookie is cleared
    browser.cookies[SESSION_COOKIE] = sealed
    assert "Signed in as" in (await browser.get("/ui/")).text
    htpasswd = world.folder / "users.htpasswd"
    lines = [line for line in htpasswd.read_text().splitlines() if not line.startswith("reader:")]
    lines.append("reader:" + bcrypt.hashpw(b"newpwd", bcrypt.gensalt(4)).decode())
    htpasswd.write_text("\n".join(lines) + "\n")
    world.client.server.app[LIVE].runtime.gate.store.reload(force=True)
    page = await browser.get("/ui/")
    assert "Signed in as" not in page.text and "private/secret" not in page.text
