"""``GET /v2/_catalog`` lists only what the caller may pull: real registry, real TLS, real CLI.

The main test runs against a registry of its own, so every list can be
asserted exactly (the session registry holds whatever other tests pushed);
the last one uses the shared registry and asserts on its own prefix and on
"no forbidden name appears", whoever pushed it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.integration.test_ops_registry_cli import registry_cli
from tests.support.httpclient import Client, basic
from tests.support.proxyproc import ProxyProcess
from tests.support.registry import Registry
from tests.support.tap import Tap
from tests.support.tinyimage import push_tiny

ACCESS = {"pull": "anyone", "push": ["pusher"], "delete": ["pusher"],
          "repositories": [{"match": "private/**", "pull": "users"}, {"match": "vault/**", "pull": ["admins"]}]}
MARK = basic("mark", "pusherpwd")  # in groups pusher and admins here
READER = basic("reader", "readerpwd")  # a user in no group
VAULT = [f"vault/s{i:02d}" for i in range(25)] + ["vault/secret"]  # a hidden stretch longer than 10 pages of 1
ALL = ["alpha", "private/app", "private/db", "public/one", *VAULT, "zeta"]  # distribution's order
ANONYMOUS = ["alpha", "public/one", "zeta"]
USERS = ["alpha", "private/app", "private/db", "public/one", "zeta"]


def catalog_pages(client: Client, n: int | None, auth: str | None = None) -> list[list[str]]:
    """Follow ``Link`` from the first page to the end, as any client would; every page's names."""
    path: str | None = "/v2/_catalog" + (f"?n={n}" if n is not None else "")
    pages: list[list[str]] = []
    while path is not None:
        reply = client.request("GET", path, [("Authorization", auth)] if auth else [])
        assert reply.status == 200, (path, reply.status, reply.body)
        assert reply.header("Content-Type") == "application/json; charset=utf-8"
        pages.append(reply.json()["repositories"])
        link = reply.header("Link")
        path = link.split(">")[0].lstrip("<") if link else None
        assert path is None or path.startswith("/v2/_catalog?last="), link  # relative, as the registry writes
        assert len(pages) < 200, "the walk does not end"
    return pages


def flat(pages: list[list[str]]) -> list[str]:
    return [name for page in pages for name in page]


@pytest.fixture
def own_registry(tmp_path: Path) -> Iterator[Registry]:
    backend = Registry(tmp_path / "registry")
    backend.start()
    direct = Client(backend.url)
    for name in ALL:
        push_tiny(direct, name, "v1", layer_size=10)
    yield backend
    backend.stop()


@pytest.fixture
def proxy_with_admins(proxy_factory: Callable[..., ProxyProcess]) -> Callable[[str], ProxyProcess]:
    def make(backend: str) -> ProxyProcess:
        proxy = proxy_factory(backend=backend, access=ACCESS, start=False)
        (proxy.workdir / "users.groups").write_text("pusher: mark\nadmins: mark\n")
        return proxy.start()

    return make


def test_every_caller_pages_through_exactly_its_view(own_registry: Registry, tls_files,
                                                     proxy_with_admins: Callable[[str], ProxyProcess]) -> None:
    tap = Tap(own_registry.port).start()
    try:
        proxy = proxy_with_admins(tap.url)
        client = Client(proxy.url, tls_files.ca_cert)
        assert catalog_pages(client, None) == [ANONYMOUS]
        assert catalog_pages(client, None, READER) == [USERS]
        assert catalog_pages(client, None, MARK) == [ALL]
        token_reply = client.request("GET", "/token?scope=registry:catalog:*", [("Authorization", READER)])
        assert token_reply.status == 200, token_reply.body
        bearer = "Bearer " + token_reply.json()["token"]
        assert catalog_pages(client, None, bearer) == [USERS]
        for n in (1, 2):
            for auth, expected in ((None, ANONYMOUS), (READER, USERS), (bearer, USERS), (MARK, ALL)):
                pages = catalog_pages(client, n, auth)
                assert flat(pages) == expected, (n, auth)
                assert all(len(page) <= n for page in pages)
        anonymous_by_one = catalog_pages(client, 1)
        assert [] in anonymous_by_one  # the vault stretch hit the per-request bound: an empty page, then on
        links = [reply.header("Link") or "" for reply in
                 (client.request("GET", path) for path in ("/v2/_catalog?n=1&last=public%2Fone",
                                                           "/v2/_catalog?n=2&last=public%2Fone"))]
        assert all(link and "vault" not in link and "secret" not in link for link in links)
        assert all("authorization" not in (k.lower() for k, _ in head.headers) for head in tap.requests())
        tap.clear()
        zero = client.request("GET", "/v2/_catalog?n=0")
        assert (zero.status, zero.json(), zero.header("Link")) == (200, {"repositories": []}, None)
        assert tap.requests() == []  # n=0 is answered without asking the registry
        too_many = client.request("GET", "/v2/_catalog?n=1001")
        assert too_many.status == 400 and too_many.json()["errors"][0]["code"] == "PAGINATION_NUMBER_INVALID"
        tap.clear()
        bounded = client.request("GET", "/v2/_catalog?n=1&last=public%2Fone")
        assert bounded.json() == {"repositories": []}
        assert [head.target for head in tap.requests()][-1] == "/v2/_catalog?last=vault%2Fs08&n=1"  # 10 pages
        link = bounded.header("Link") or ""
        assert link.startswith("</v2/_catalog?last=~") and "vault" not in link  # sealed: the name stays hidden
    finally:
        tap.stop()


def test_the_registry_cli_shows_the_same_filtered_view(own_registry: Registry, tls_files,
                                                       proxy_with_admins: Callable[[str], ProxyProcess]) -> None:
    proxy = proxy_with_admins(own_registry.url)
    for page_size in ("1", "2", "100"):
        anonymous = registry_cli(proxy, tls_files, "catalog", "--json", "--page-size", page_size)
        assert anonymous.returncode == 0, anonymous.stderr
        assert json.loads(anonymous.stdout) == ANONYMOUS
        reader = registry_cli(proxy, tls_files, "catalog", "--page-size", page_size, user="reader",
                              password="readerpwd")
        assert reader.returncode == 0, reader.stderr
        assert reader.stdout.split() == USERS
        admin = registry_cli(proxy, tls_files, "catalog", "--json", "--page-size", page_size, user="mark",
                             password="pusherpwd")
        assert json.loads(admin.stdout) == ALL, admin.stderr


def test_the_shared_registry_never_shows_a_forbidden_name(registry: Registry, tls_files,
                                                          proxy_with_admins: Callable[[str], ProxyProcess]) -> None:
    proxy = proxy_with_admins(registry.url)
    client = Client(proxy.url, tls_files.ca_cert)
    prefix = "cf" + secrets.token_hex(4)
    mine = {"public": f"{prefix}/pub", "private": f"private/{prefix}", "vault": f"vault/{prefix}"}
    for name in mine.values():
        push_tiny(client, name, "v1", auth=MARK, layer_size=10)
    for n in (2, 100):
        anonymous = flat(catalog_pages(client, n))
        assert mine["public"] in anonymous
        assert not [x for x in anonymous if x.startswith(("private/", "vault/"))]
        assert len(anonymous) == len(set(anonymous))
        reader = flat(catalog_pages(client, n, READER))
        assert {x for x in reader if prefix in x} == {mine["public"], mine["private"]}
        assert not [x for x in reader if x.startswith("vault/")]
        admin = flat(catalog_pages(client, n, MARK))
        assert {x for x in admin if prefix in x} == set(mine.values())
    cli = registry_cli(proxy, tls_files, "catalog", "--json")
    assert cli.returncode == 0, cli.stderr
    listed = json.loads(cli.stdout)
    assert listed == flat(catalog_pages(client, 100))
