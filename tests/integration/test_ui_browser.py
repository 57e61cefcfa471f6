"""The web catalog in a real browser: Debian's chromium (headless) through selenium and chromium-driver.

A registry of its own (so every list is exact) holds a small, realistic
set of images plus 1,000 more repositories; the proxy runs for real with
TLS (the browser ignores the test CA rather than trusting it). The run
saves ui-catalog.png, ui-repository.png and ui-tag.png into the test's
temporary folder (into docs/, for the README, with RAP_UPDATE_SCREENSHOTS=1:
a test run must not dirty the checkout), and
prints the measured render times and page weights (nothing is asserted
about time: a slow machine must not fail the suite).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import ssl
import statistics
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.wait import WebDriverWait

from tests.support.httpclient import Client
from tests.support.proxyproc import REPO_ROOT, ProxyProcess
from tests.support.registry import Registry
from tests.support.tinyimage import OCI_INDEX, OCI_MANIFEST, push_blob

ACCESS = {"pull": "anyone", "push": ["pusher"], "delete": ["pusher"],
          "repositories": [{"match": "private/**", "pull": "users"}]}
DOCS = REPO_ROOT / "docs"
SHOTS = Path(tempfile.gettempdir()) / "rap-ui-screenshots"
PWN = '<script>window.__pwned=1</script>"><img src=x onerror="window.__pwned=2">'
TEAMS = ["platform", "payments", "search", "data", "mobile", "web", "infra", "ml", "security", "tools"]
BULK = [f"{team}/service-{i:03d}" for team in TEAMS for i in range(100)]


def push_image(client: Client, repo: str, tag: str, arch: str = "amd64", config: dict[str, Any] | None = None,
               layer: bytes = b"") -> tuple[str, int]:
    """An OCI image with a config of our choosing and one layer; (manifest digest, manifest size)."""
    body = json.dumps({"architecture": arch, "os": "linux", "created": "2024-05-01T12:34:56.123456789Z",
                       "rootfs": {"type": "layers", "diff_ids": []}, **(config or {})}).encode()
    cdigest = push_blob(client, repo, body)
    data = layer or hashlib.sha256(f"{repo}{tag}{arch}".encode()).digest() * 4000
    ldigest = push_blob(client, repo, data)
    manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": len(body)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": ldigest,
                    "size": len(data)}]}).encode()
    return put_manifest(client, repo, tag, manifest, OCI_MANIFEST), len(manifest)


def put_manifest(client: Client, repo: str, tag: str, body: bytes, media_type: str) -> str:
    reply = client.request("PUT", f"/v2/{repo}/manifests/{tag}", [("Content-Type", media_type)], body=body)
    assert reply.status == 201, (reply.status, reply.body)
    return "sha256:" + hashlib.sha256(body).hexdigest()


def app_config(version: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"config": {
        "Entrypoint": ["/usr/local/bin/app"], "Cmd": ["serve", "--port", "8080"], "User": "app", "WorkingDir": "/srv",
        "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin", f"APP_VERSION={version}"],
        "ExposedPorts": {"8080/tcp": {}}, "Labels": {
            "org.opencontainers.image.source": "https://git.example.org/team/app",
            "org.opencontainers.image.version": version, **(labels or {})}},
        "history": [{"created": "2024-05-01T12:30:00Z", "created_by": "/bin/sh -c #(nop) ADD file:rootfs in /"},
                    {"created": "2024-05-01T12:34:56Z", "created_by": "COPY app /usr/local/bin/app"},
                    {"created": "2024-05-01T12:34:56Z", "created_by": 'CMD ["serve"]', "empty_layer": True}]}


@pytest.fixture(scope="module")
def content(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """The registry: named images, a multi-arch index, a hostile label, a private repo, 1,000 more."""
    backend = Registry(tmp_path_factory.mktemp("ui-registry"))
    backend.start()
    client = Client(backend.url)
    amd, amd_size = push_image(client, "team/app", "2.0-amd64", config=app_config("2.0"))
    arm, arm_size = push_image(client, "team/app", "2.0-arm64", "arm64", config=app_config("2.0"))
    index = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": d, "size": s, "platform": {"os": "linux", "architecture": a}}
        for d, s, a in ((amd, amd_size, "amd64"), (arm, arm_size, "arm64"))]}).encode()
    for tag in ("latest", "2.0"):
        put_manifest(client, "team/app", tag, index, OCI_INDEX)
    for version in ("1.9", "1.10", "1.2"):
        push_image(client, "team/app", version, config=app_config(version))
    push_image(client, "team/evil", "latest", config=app_config("6.6.6", {"description": PWN, "x": "javascript:x()"}))
    push_image(client, "private/secret", "v1")
    old, _ = push_image(client, "scratch/deleteme", "old")
    put_manifest(client, "scratch/deleteme", "old-alias", *client_manifest(client, "scratch/deleteme", old))
    push_image(client, "scratch/deleteme", "keep")
    seed = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    cdigest = push_blob(client, "seed/base", seed)
    tiny = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "layers": [], "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": cdigest, "size": len(seed)}}).encode()

    def bulk(name: str) -> None:  # a cross-repository mount and one manifest: two requests per repository
        mounted = client.request("POST", f"/v2/{name}/blobs/uploads/?mount={cdigest}&from=seed/base", body=b"")
        assert mounted.status == 201, mounted.status
        put_manifest(client, name, "1.0", tiny, OCI_MANIFEST)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(bulk, BULK))
    yield backend
    backend.stop()


def client_manifest(client: Client, repo: str, digest: str) -> tuple[bytes, str]:
    reply = client.request("GET", f"/v2/{repo}/manifests/{digest}", [("Accept", OCI_MANIFEST)])
    return reply.body, OCI_MANIFEST


@pytest.fixture
def site(content: Registry, proxy_factory: Callable[..., ProxyProcess]) -> ProxyProcess:
    return proxy_factory(backend=content.url, access=ACCESS)


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--ignore-certificate-errors", "--window-size=1280,900", "--lang=en-US"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def sign_in(driver: WebDriver, site: ProxyProcess, user: str, password: str) -> None:
    driver.get(f"{site.url}/ui/signin")
    driver.find_element(By.NAME, "user").send_keys(user)
    driver.find_element(By.NAME, "password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "form.card button[type=submit]").click()
    wait_text(driver, "header nav", f"Signed in as {user}")


def wait_text(driver: WebDriver, selector: str, text: str) -> None:
    """After a click that submits a form: wait for the next page (the click does not wait for it)."""
    # the old page may be replaced between finding an element and reading it: that is "not yet", not an error
    WebDriverWait(driver, 30, ignored_exceptions=[StaleElementReferenceException]).until(
        lambda d: any(text in e.text for e in d.find_elements(By.CSS_SELECTOR, selector)))


def sign_out(driver: WebDriver) -> None:
    driver.find_element(By.CSS_SELECTOR, "header nav form button").click()
    wait_text(driver, "header nav", "Sign in")


def names(driver: WebDriver) -> list[str]:
    return [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#repos li a")]


def screenshot(driver: WebDriver, name: str, most: int = 1600) -> None:
    """A commit-ready PNG of the page, as tall as the page up to ``most`` pixels."""
    height = int(driver.execute_script("return document.documentElement.scrollHeight"))
    driver.set_window_size(1280, max(600, min(height + 20, most)))
    folder = DOCS if os.environ.get("RAP_UPDATE_SCREENSHOTS") == "1" else SHOTS
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    assert driver.save_screenshot(str(path))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    driver.set_window_size(1280, 900)


def problems(driver: WebDriver) -> list[dict[str, Any]]:
    """Console entries worth failing for: script errors, CSP reports (an escaped page has none).

    Network entries are left out: they are the 404 pages these tests ask for on purpose.
    """
    return [e for e in driver.get_log("browser") if e.get("source") != "network"
            and (e["level"] == "SEVERE" or "Content Security" in e["message"])]


def test_anonymous_browsing_hides_private_repositories(site: ProxyProcess, browser: WebDriver) -> None:
    browser.get(f"{site.url}/")
    assert browser.current_url == f"{site.url}/ui/"
    assert "1,004 repositories" in browser.find_element(By.ID, "count").text  # 1,000 + 4 public named ones
    assert len(names(browser)) == 100 and "private/secret" not in names(browser)
    browser.get(f"{site.url}/ui/?q=private")
    assert names(browser) == []
    browser.get(f"{site.url}/ui/?q=team")
    assert names(browser) == ["team/app", "team/evil"]
    live = browser.find_element(By.ID, "q")  # the progressive filter narrows the page as one types
    live.clear()
    live.send_keys("evil")
    assert [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#repos li a") if e.is_displayed()] == ["team/evil"]
    browser.get(f"{site.url}/ui/r/private/secret")
    assert "Not found" in browser.title
    browser.get(f"{site.url}/ui/r/team/app")
    tags = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#tags tr td:first-child a")]
    assert tags == ["latest", "1.2", "1.9", "1.10", "2.0", "2.0-amd64", "2.0-arm64"]
    assert not browser.find_elements(By.LINK_TEXT, "Delete")
    assert problems(browser) == []
    measure(site, browser)


def test_sign_in_shows_private_repositories_and_sign_out_hides_them(site: ProxyProcess, browser: WebDriver) -> None:
    sign_in(browser, site, "reader", "readerpwd")
    browser.get(f"{site.url}/ui/?q=secret")
    assert names(browser) == ["private/secret"]
    cookie = browser.get_cookie("__Secure-rap_session")
    assert cookie is not None and cookie["httpOnly"] and cookie["secure"] and cookie["sameSite"] == "Strict"
    assert browser.execute_script("return document.cookie") == ""  # HttpOnly: no script reads it
    sign_out(browser)
    browser.get(f"{site.url}/ui/?q=secret")
    assert names(browser) == []
    assert problems(browser) == []


def test_a_multi_arch_index_lists_every_platform(site: ProxyProcess, browser: WebDriver) -> None:
    sign_in(browser, site, "mark", "pusherpwd")
    browser.get(f"{site.url}/ui/r/team/app")
    latest = browser.find_element(By.CSS_SELECTOR, 'tr[data-name="latest"]').text
    assert "linux/amd64" in latest and "linux/arm64" in latest
    screenshot(browser, "ui-repository.png")
    browser.find_element(By.LINK_TEXT, "latest").click()
    wait_text(browser, "h1", "team/app:latest")
    platforms = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "table:first-of-type tbody tr td:first-child")]
    assert platforms[:2] == ["linux/amd64", "linux/arm64"]
    assert browser.find_element(By.ID, "pull-tag").text == f"docker pull {site.host_port}/team/app:latest"
    assert "@sha256:" in browser.find_element(By.ID, "pull-digest").text
    assert browser.find_element(By.CSS_SELECTOR, "button[data-copy=pull-tag]").is_displayed()  # JS revealed it
    body = browser.find_element(By.TAG_NAME, "main").text
    for shown in ("APP_VERSION", "8080/tcp",
                  '["serve", "--port", "8080"]', "COPY app /usr/local/bin/app", "https://git.example.org/team/app"):
        assert shown in body, shown
    browser.find_element(By.LINK_TEXT, "linux/arm64").click()
    wait_text(browser, "tr.chosen", "linux/arm64")
    browser.get(f"{site.url}/ui/r/team/app/-/tag/latest")
    screenshot(browser, "ui-tag.png")
    browser.get(f"{site.url}/ui/")
    screenshot(browser, "ui-catalog.png", 900)
    assert problems(browser) == []


def test_a_member_with_delete_rights_deletes_and_others_see_no_button(site: ProxyProcess, browser: WebDriver,
                                                                      content: Registry) -> None:
    sign_in(browser, site, "reader", "readerpwd")
    browser.get(f"{site.url}/ui/r/scratch/deleteme")
    assert not browser.find_elements(By.LINK_TEXT, "Delete")
    sign_out(browser)
    sign_in(browser, site, "mark", "pusherpwd")
    browser.get(f"{site.url}/ui/r/scratch/deleteme")
    browser.find_element(By.CSS_SELECTOR, 'tr[data-name="old"] a.danger').click()
    wait_text(browser, "h1", "Delete sha256:")
    listed = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "main ul li code")]
    assert listed == ["scratch/deleteme:old", "scratch/deleteme:old-alias"]
    browser.find_element(By.CSS_SELECTOR, "button.danger").click()
    wait_text(browser, ".notice", "Deleted sha256:")
    tags = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "#tags tr td:first-child a")]
    assert tags == ["keep"]
    listing = json.loads(Client(content.url).request("GET", "/v2/scratch/deleteme/tags/list").body)
    assert listing["tags"] == ["keep"]  # the registry itself agrees
    assert problems(browser) == []


def test_a_hostile_label_never_runs(site: ProxyProcess, browser: WebDriver) -> None:
    browser.get(f"{site.url}/ui/r/team/evil/-/tag/latest")
    assert browser.execute_script("return window.__pwned === undefined")
    assert browser.execute_script("return document.querySelectorAll('img, main script, [onerror]').length") == 0
    cells = [e.text for e in browser.find_elements(By.CSS_SELECTOR, "main td")]
    assert PWN in cells  # the label is there, as text
    assert not browser.find_elements(By.CSS_SELECTOR, 'a[href^="javascript"]')
    assert problems(browser) == []


def measure(site: ProxyProcess, driver: WebDriver) -> None:
    """Print what the README quotes: catalog render time over TLS, page weights, browser load time."""
    ctx = ssl.create_default_context()
    ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE

    def fetch(path: str) -> bytes:
        with urllib.request.urlopen(f"{site.url}{path}", context=ctx, timeout=30) as resp:
            return bytes(resp.read())

    times = []
    for _ in range(5):
        started = time.perf_counter()
        catalog = fetch("/ui/")
        times.append(time.perf_counter() - started)
    urls = re.findall(r'(?:href|src)="(/ui/static/ui\.[^"]+)"', catalog.decode())
    assets = sum(len(fetch(url)) for url in urls)
    weights = {path: len(fetch(path)) for path in ("/ui/", "/ui/r/team/app", "/ui/r/team/app/-/tag/latest")}
    driver.get(f"{site.url}/ui/")
    loaded = driver.execute_script("const n = performance.getEntriesByType('navigation')[0];"
                                   "return Math.round(n.domContentLoadedEventEnd - n.startTime);")
    print(f"\nUI measure: catalog of 1,004 repositories, GET /ui/ over TLS: median "
          f"{statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms; DOMContentLoaded in chromium "
          f"{loaded} ms; HTML bytes {json.dumps(weights)}; CSS+JS bytes {assets}")
    (Path(site.workdir) / "ui-measure.json").write_text(json.dumps({"times": times, "weights": weights,
                                                                   "assets": assets, "loaded_ms": loaded}))
