"""Tokens follow the policy in force, and a mount's challenge names every scope it needs (issue 10).

A token records what was allowed when it was issued; a reload that tightens
the rules must close what the token opened (case 2). A cross-repository
mount needs pull on its source too, so the challenge for it must say so: a
client that requests exactly the challenged scopes then succeeds (case 3).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.authz import (
    MARK,
    READER,
    Rig,
    bearer,
    challenge_params,
    error_code,
    granted,
    start_rig,
    token,
    token_from,
    unique,
)
from tests.support.authz import reload_config as reload
from tests.support.tap import Tap
from tests.support.tinyimage import OCI_MANIFEST, push_blob, push_tiny

ACCESS = {"pull": "anyone", "push": ["pusher"], "delete": ["pusher"]}
GROUPS = "pusher: mark\nadmins: reader\n"


@pytest.fixture
def tap(registry) -> Iterator[Tap]:
    t = Tap(registry.port).start()
    yield t
    t.stop()


@pytest.fixture
def rig(proxy_factory, tap, tls_files) -> Rig:
    return start_rig(proxy_factory, tap, tls_files.ca_cert, access=ACCESS, groups=GROUPS)


def _open_upload(rig: Rig, repo: str, auth: list[tuple[str, str]]):
    return rig.client.request("POST", f"/v2/{repo}/blobs/uploads/", auth, body=b"")


def _tighten(config: dict) -> None:
    config["access"]["repositories"] = [{"match": "public/**", "push": ["admins"]}]


def test_a_push_token_stops_working_when_a_reload_tightens_the_rule(rig):
    repo = unique("public/x")
    tiny = push_tiny(rig.client, repo, "v1", auth=MARK)
    tok = token(rig.client, [f"repository:{repo}:pull,push"], MARK)
    assert granted(tok, repo) == ["pull", "push"]
    assert _open_upload(rig, repo, bearer(tok)).status == 202  # before: the token opens uploads

    reload(rig.proxy, _tighten)
    rig.tap.clear()
    stale = _open_upload(rig, repo, bearer(tok))
    assert stale.status == 401, (stale.status, stale.body)
    params = challenge_params(stale.header("WWW-Authenticate") or "")
    assert params["error"] == "insufficient_scope" and params["scope"] == f"repository:{repo}:pull,push"
    assert error_code(stale) == "DENIED" and "admins" in stale.json()["errors"][0]["message"]
    put = rig.client.request("PUT", f"/v2/{repo}/manifests/v2", [*bearer(tok), ("Content-Type", OCI_MANIFEST)],
                             body=b"{}")
    assert put.status == 401, (put.status, put.body)
    basic = _open_upload(rig, repo, [("Authorization", MARK)])
    assert basic.status == 403 and error_code(basic) == "DENIED", (basic.status, basic.body)
    assert rig.nothing_forwarded(), rig.tap.requests()
    # what the new rule still allows keeps working with the same token, and new tokens are narrowed
    pulled = rig.client.request("GET", f"/v2/{repo}/manifests/v1", [*bearer(tok), ("Accept", OCI_MANIFEST)])
    assert pulled.status == 200 and pulled.header("Docker-Content-Digest") == tiny.digest
    assert granted(token(rig.client, [f"repository:{repo}:pull,push"], MARK), repo) == ["pull"]
    admin = token(rig.client, [f"repository:{repo}:pull,push"], READER)
    assert _open_upload(rig, repo, bearer(admin)).status == 202


def _mount_path(target: str, digest: str, source: str) -> str:
    return f"/v2/{target}/blobs/uploads/?mount={digest}&from={source}"


def _source_blob(rig: Rig) -> tuple[str, str, bytes]:
    source = unique("mnt/src")
    data = b"shared layer " + os.urandom(32)
    return source, push_blob(rig.client, source, data, MARK), data


def _assert_mounted(rig: Rig, reply, target: str, digest: str, data: bytes) -> None:
    assert reply.status == 201, (reply.status, reply.body)
    assert (reply.header("Location") or "").endswith(f"/v2/{target}/blobs/{digest}")
    assert rig.client.request("GET", f"/v2/{target}/blobs/{digest}").body == data


def test_the_mount_challenge_names_the_source_and_its_scopes_complete_the_mount(rig):
    source, digest, data = _source_blob(rig)
    target = unique("mnt/dst")
    rig.tap.clear()
    challenged = rig.client.request("POST", _mount_path(target, digest, source), body=b"")
    assert challenged.status == 401, (challenged.status, challenged.body)
    value = challenged.header("WWW-Authenticate") or ""
    assert value.startswith("Bearer ")
    assert challenge_params(value)["scope"] == f"repository:{target}:pull,push repository:{source}:pull"
    assert rig.nothing_forwarded(), rig.tap.requests()
    tok = token_from(rig.client, value, MARK)  # exactly the challenged scopes, split on spaces
    assert granted(tok, target) == ["pull", "push"] and granted(tok, source) == ["pull"]
    _assert_mounted(rig, rig.client.request("POST", _mount_path(target, digest, source), bearer(tok), body=b""),
                    target, digest, data)


def test_the_insufficient_scope_challenge_of_a_mount_names_the_source(rig):
    source, digest, data = _source_blob(rig)
    target = unique("mnt/dst")
    narrow = token(rig.client, [f"repository:{target}:pull,push"], MARK)
    rig.tap.clear()
    refused = rig.client.request("POST", _mount_path(target, digest, source), bearer(narrow), body=b"")
    assert refused.status == 401, (refused.status, refused.body)
    value = refused.header("WWW-Authenticate") or ""
    params = challenge_params(value)
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == f"repository:{target}:pull,push repository:{source}:pull"
    assert rig.nothing_forwarded(), rig.tap.requests()
    tok = token_from(rig.client, value, MARK)
    _assert_mounted(rig, rig.client.request("POST", _mount_path(target, digest, source), bearer(tok), body=b""),
                    target, digest, data)
