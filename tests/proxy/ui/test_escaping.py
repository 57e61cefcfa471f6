"""Everything a pusher wrote is shown as text: tags, labels, env, history, names, in every context.

Each page is parsed as a browser would (``htmlcheck``): it must hold our one
script and stylesheet and nothing else that runs, no ``on*`` attribute, no
``javascript:`` URL. Security headers are on every answer.
"""

from __future__ import annotations

import json

from tests.proxy.ui.conftest import MakeUI
from tests.proxy.ui.fakeregistry import FakeDistribution
from tests.proxy.ui.htmlcheck import assert_inert

SCRIPT = "<script>alert(1)</script>"
ATTR = '"><img src=x onerror=alert(1)>'
QUOTES = "'\"`"
HOSTILE_CONFIG = {
    "os": ATTR, "architecture": SCRIPT,
    "config": {
        "Labels": {"script": SCRIPT, "attr": ATTR, "js": "javascript:alert(1)", "web": "https://example.org/src",
                   ATTR: QUOTES, "data": "data:text/html,<script>alert(1)</script>"},
        "Env": [f"EVIL={ATTR}", f"{SCRIPT}=1"],
        "Entrypoint": [f"</code>{SCRIPT}"], "Cmd": [ATTR, "{0}"],
        "ExposedPorts": {f"{ATTR}/tcp": {}}, "User": ATTR, "WorkingDir": SCRIPT,
    },
    "history": [{"created": ATTR, "created_by": f"/bin/sh -c {SCRIPT}", "comment": ATTR}],
}


def hostile_registry() -> tuple[FakeDistribution, str]:
    backend = FakeDistribution(names=[SCRIPT, ATTR, "javascript:alert(1)"])
    digest = backend.push_image("team/app", "1.0", HOSTILE_CONFIG)
    other = backend.push_image("team/app", "arm", {"os": "linux"}, arch="arm64")
    backend.push_index("team/app", "multi", {"linux/amd64": digest, "linux/arm64": other})
    backend.extra_tags["team/app"] = [ATTR, SCRIPT, "ok\"x"]  # listed by a broken registry; never valid tags
    return backend, digest


async def test_hostile_image_content_is_text_on_every_page(make_ui: MakeUI) -> None:
    backend, digest = hostile_registry()
    world = await make_ui(backend)
    browser = world.browser()
    pages = ["/ui/", "/ui/r/team/app", "/ui/r/team/app/-/tag/1.0", "/ui/r/team/app/-/tag/multi",
             f"/ui/r/team/app/-/tag/multi?platform={digest}"]
    for path in pages:
        page = await browser.get(path)
        assert page.status == 200, (path, page.text)
        assert_inert(page.text)
        assert "<script>alert" not in page.text and "<img" not in page.text
    tag = (await browser.get("/ui/r/team/app/-/tag/1.0")).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in tag
    assert "&quot;&gt;&lt;img src=x onerror=alert(1)&gt;" in tag
    assert "javascript:alert(1)" in tag  # shown as text ...
    found = assert_inert(tag)
    assert "https://example.org/src" in found.links  # ... while a plain web URL is a link
    assert not any("javascript" in link or link.startswith("data:") for link in found.links)
    assert 'rel="noopener noreferrer nofollow"' in tag
    # entrypoint and cmd in exec form: JSON text, HTML-escaped as a whole
    assert json.dumps([f"</code>{SCRIPT}"]).replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;") in tag


async def test_hostile_catalog_names_and_tags_never_become_markup(make_ui: MakeUI) -> None:
    backend, _ = hostile_registry()
    world = await make_ui(backend)
    browser = world.browser()
    catalog = await browser.get("/ui/")
    found = assert_inert(catalog.text)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in catalog.text
    assert all(link.startswith("/") for link in found.links)  # a name is never a URL of its own
    repository = await browser.get("/ui/r/team/app")
    assert "3 tags" in repository.text  # the three invalid tags the registry listed are not shown at all
    assert "ok&quot;x" not in repository.text and "ok\"x" not in repository.text
    # the filter box echoes its query escaped
    filtered = await browser.get("/ui/?q=" + ATTR.replace(" ", "+"))
    assert_inert(filtered.text)
    assert 'value="&quot;&gt;&lt;img' in filtered.text


async def test_security_headers_on_pages_errors_redirects_and_static(make_ui: MakeUI) -> None:
    backend, _ = hostile_registry()
    world = await make_ui(backend)
    browser = world.browser()
    catalog = await browser.get("/ui/")
    css = next(line.split('href="')[1].split('"')[0] for line in catalog.text.split("<link") if "stylesheet" in line)
    answers = {path: await browser.get(path) for path in
               ["/", "/ui", "/ui/", "/ui/r/team/app", "/ui/r/nope/x", "/ui/nothing", "/ui/signin", css,
                "/ui/static/missing.css", "/ui/r/team/app/-/tag/missing"]}
    for path, page in answers.items():
        csp = page.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "default-src 'none'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp and "http" not in csp, path
        assert page.headers["X-Content-Type-Options"] == "nosniff", path
        assert page.headers["X-Frame-Options"] == "DENY", path
    assert answers["/"].status == 302 and answers["/"].headers["Location"] == "/ui/"
    assert answers["/ui"].status == 302 and answers["/ui"].headers["Location"] == "/ui/"
    assert answers["/ui/"].headers["Cache-Control"] == "no-store"
    assert answers[css].status == 200 and "immutable" in answers[css].headers["Cache-Control"]
    assert answers[css].headers["Content-Type"].startswith("text/css")
    for missing in ("/ui/r/nope/x", "/ui/nothing", "/ui/static/missing.css", "/ui/r/team/app/-/tag/missing"):
        assert answers[missing].status == 404, missing
        assert answers[missing].headers["Content-Type"].startswith("text/html"), missing
        assert "WWW-Authenticate" not in answers[missing].headers


async def test_encoded_and_odd_paths_are_not_pages(make_ui: MakeUI) -> None:
    backend, _ = hostile_registry()
    world = await make_ui(backend)
    browser = world.browser()
    for path in ("/ui/r/team%2Fapp", "/ui/r/Team/App", "/ui/r/team/app/-/tag/..", "/ui/r/team/app/-/x",
                 "/ui/r/", "/ui/r/team/app/-/tag/a%20b"):
        page = await browser.get(path)
        assert page.status == 404, path
        assert_inert(page.text)
    assert not any("%" in s.path.split("?")[0] for s in backend.seen)


async def test_a_host_header_that_is_not_a_host_gets_a_bare_page_that_echoes_nothing(make_ui: MakeUI) -> None:
    world = await make_ui(FakeDistribution())
    page = await world.browser().get("/ui/", headers={"Host": 'evil"><script>x</script>'})
    assert page.status == 400 and "evil" not in page.text and "<script" not in page.text
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
