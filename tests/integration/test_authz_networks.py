"""Where a rule applies: a namespace glob covers the namespace's own name, and ``from`` networks bind.

Case 5 of issue 10: ``team-a/**`` used to leave the repository ``team-a``
itself to the default rule, so any pusher could write it. Case 6: a rule
may admit a group only from some networks (``{groups: [...], from: [CIDR]}``),
and that holds for Basic logins, for tokens when issued, and for tokens when
used after a reload.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.authz import (
    MARK,
    READER,
    Rig,
    bearer,
    challenge_params,
    error_code,
    error_message,
    granted,
    start_rig,
    token,
    unique,
)
from tests.support.authz import reload_config as reload
from tests.support.clients import must
from tests.support.httpclient import Client
from tests.support.tap import Tap
from tests.support.tinyimage import OCI_MANIFEST, push_tiny

TEAMS = {
    "pull": "anyone",
    "push": ["pusher"],
    "delete": ["pusher"],
    "repositories": [{"match": "team-a/**", "push": ["team-a"]}],
}
TEAM_GROUPS = "pusher: mark\nteam-a: reader\n"
CLAIMED = [("X-Forwarded-For", "10.1.2.3"), ("X-Real-IP", "10.1.2.3"), ("Forwarded", "for=10.1.2.3")]


def networked(*networks: str) -> dict:
    return {"pull": "anyone", "push": {"groups": ["pusher"], "from": list(networks)}, "delete": ["pusher"]}


@pytest.fixture
def tap(registry) -> Iterator[Tap]:
    t = Tap(registry.port).start()
    yield t
    t.stop()


def _upload(rig: Rig, repo: str, auth: list[tuple[str, str]]):
    return rig.client.request("POST", f"/v2/{repo}/blobs/uploads/", auth, body=b"")


@pytest.mark.parametrize("challenge", ["basic", "bearer"])
def test_a_namespace_rule_governs_the_repository_named_like_the_namespace(proxy_factory, tap, tls_files,
                                                                          challenge):
    rig = start_rig(proxy_factory, tap, tls_files.ca_cert, access=TEAMS, groups=TEAM_GROUPS, challenge=challenge)
    rig.tap.clear()
    refused = _upload(rig, "team-a", [("Authorization", MARK)])
    assert refused.status == 403 and error_code(refused) == "DENIED", (refused.status, refused.body)
    assert "team-a" in error_message(refused)
    assert rig.nothing_forwarded(), rig.tap.requests()
    push_tiny(rig.client, "team-a", f"t-{challenge}", auth=READER)  # a team-a member may
    push_tiny(rig.client, "team-a/app", f"t-{challenge}", auth=READER)
    # the glob stops at the namespace: a longer name beside it is the default rule's
    push_tiny(rig.client, "team-ab", f"t-{challenge}", auth=MARK)
    assert _upload(rig, "team-ab", [("Authorization", READER)]).status == 403
    if challenge == "bearer":
        assert granted(token(rig.client, ["repository:team-a:pull,push"], MARK), "team-a") == ["pull"]
        member = token(rig.client, ["repository:team-a:pull,push"], READER)
        assert granted(member, "team-a") == ["pull", "push"]
        assert _upload(rig, "team-a", bearer(member)).status == 202


def _image_on_the_backend(registry, repo: str) -> str:
    """Pushed straight to the registry: what the proxy's pull rule (anyone, anywhere) then serves."""
    return push_tiny(Client(registry.url), repo, "v1").digest


def _assert_pulls(rig: Rig, repo: str, digest: str, auth: list[tuple[str, str]]) -> None:
    got = rig.client.request("GET", f"/v2/{repo}/manifests/v1", [*auth, ("Accept", OCI_MANIFEST)])
    assert got.status == 200 and got.header("Docker-Content-Digest") == digest, (got.status, got.body)


def _assert_wrong_network(reply) -> None:
    assert reply.status == 403 and error_code(reply) == "DENIED", (reply.status, reply.body)
    assert "not accepted from 127.0.0.1" in error_message(reply), error_message(reply)
    assert "10.0.0.0/8" in error_message(reply)


def test_a_push_rule_bound_to_other_networks_refuses_basic_and_tokens(proxy_factory, tap, tls_files, registry):
    rig = start_rig(proxy_factory, tap, tls_files.ca_cert, access=networked("10.0.0.0/8"))
    repo = unique("net/app")
    digest = _image_on_the_backend(registry, repo)
    rig.tap.clear()
    _assert_wrong_network(_upload(rig, repo, [("Authorization", MARK)]))
    _assert_wrong_network(_upload(rig, repo, [("Authorization", MARK), *CLAIMED]))  # headers are not the peer
    anonymous = _upload(rig, repo, [])
    _assert_wrong_network(anonymous)  # logging in cannot help: no challenge to send a client round
    assert anonymous.header("WWW-Authenticate") is None
    tok = token(rig.client, [f"repository:{repo}:pull,push"], MARK)
    assert granted(tok, repo) == ["pull"]  # requested from 127.0.0.1: push is not granted
    service = rig.client.request("GET", "/v2/").header("WWW-Authenticate") or ""
    claimed = rig.client.request("GET", f"/token?service={challenge_params(service)['service']}"
                                 f"&scope=repository:{repo}:pull,push", [("Authorization", MARK), *CLAIMED])
    assert claimed.status == 200 and granted(claimed.json()["token"], repo) == ["pull"]
    _assert_wrong_network(_upload(rig, repo, bearer(tok)))
    put = rig.client.request("PUT", f"/v2/{repo}/manifests/v2", [*bearer(tok), ("Content-Type", OCI_MANIFEST)],
                             body=b"{}")
    _assert_wrong_network(put)
    assert rig.nothing_forwarded(), rig.tap.requests()
    # pulls are unaffected: anonymous, with Basic, and with the same token
    _assert_pulls(rig, repo, digest, [])
    _assert_pulls(rig, repo, digest, [("Authorization", MARK)])
    _assert_pulls(rig, repo, digest, bearer(tok))


def test_a_token_minted_inside_the_network_stops_working_after_a_reload(proxy_factory, tap, tls_files, registry):
    rig = start_rig(proxy_factory, tap, tls_files.ca_cert, access=networked("127.0.0.0/8"))
    repo = unique("net/reload")
    digest = _image_on_the_backend(registry, repo)
    tok = token(rig.client, [f"repository:{repo}:pull,push"], MARK)
    assert granted(tok, repo) == ["pull", "push"]
    assert _upload(rig, repo, bearer(tok)).status == 202

    reload(rig.proxy, lambda config: config["access"].update(networked("10.0.0.0/8")))
    rig.tap.clear()
    _assert_wrong_network(_upload(rig, repo, bearer(tok)))
    _assert_wrong_network(_upload(rig, repo, [("Authorization", MARK)]))
    assert rig.nothing_forwarded(), rig.tap.requests()
    _assert_pulls(rig, repo, digest, bearer(tok))


def test_a_push_from_an_allowed_network_works_with_a_real_client(proxy_factory, tap, tls_files, skopeo, oci_image):
    rig = start_rig(proxy_factory, tap, tls_files.ca_cert, access=networked("127.0.0.0/8", "10.0.0.0/8"))
    repo = unique("net/skopeo")
    image = oci_image(layers=1, files_per_layer=1, file_size=4096)
    must(skopeo.push(image.ref, f"{rig.proxy.host_port}/{repo}:v1", dest_creds="mark:pusherpwd"))
    must(skopeo.inspect_digest(f"{rig.proxy.host_port}/{repo}:v1"))  # anonymous pull
    # the network half admits 127.0.0.1; the group half still applies there
    refused = _upload(rig, repo, [("Authorization", READER)])
    assert refused.status == 403 and "not accepted from" not in error_message(refused), refused.body
    denied = skopeo.push(image.ref, f"{rig.proxy.host_port}/{repo}:reader", dest_creds="reader:readerpwd")
    assert denied.returncode != 0
