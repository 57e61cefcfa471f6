"""The registry token flow over plain HTTP calls, as a client makes them.

Against the real registry behind a real proxy: challenge, anonymous and
authenticated tokens, narrowing, insufficient_scope, OAuth2 POST grants, and
tokens dying when a user's password or groups change.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import subprocess
import sys
import time
from urllib.parse import urlencode

import pytest

from tests.support.httpclient import Client, basic

MARK = basic("mark", "pusherpwd")
READER = basic("reader", "readerpwd")


def claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def challenge_params(value: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


@pytest.fixture
def proxy(proxy_factory):
    return proxy_factory()


@pytest.fixture
def client(proxy, tls_files):
    return Client(proxy.url, tls_files.ca_cert)


def service_of(client: Client) -> str:
    ping = client.request("GET", "/v2/")
    assert ping.status == 401
    return challenge_params(ping.header("WWW-Authenticate") or "")["service"]


def token(client: Client, *scopes: str, auth: str | None = None, **extra: str) -> tuple[int, dict]:
    query = urlencode([("service", service_of(client)), *[("scope", s) for s in scopes], *extra.items()])
    reply = client.request("GET", f"/token?{query}", [("Authorization", auth)] if auth else [])
    return reply.status, reply.json()


def test_ping_challenges_with_bearer_realm_and_service(client, proxy):
    ping = client.request("GET", "/v2/")
    assert ping.status == 401
    value = ping.header("WWW-Authenticate") or ""
    assert value.startswith("Bearer ")
    params = challenge_params(value)
    assert params["realm"] == f"https://{proxy.host_port}/token" and params["service"]


def test_anonymous_token_is_narrowed_to_pull(client):
    status, body = token(client, "repository:tok/anon:pull,push")
    assert status == 200 and set(body) >= {"token", "access_token", "expires_in", "issued_at"}
    c = claims(body["token"])
    assert c["sub"] == "" and c["access"] == [{"type": "repository", "name": "tok/anon", "actions": ["pull"]}]
    assert {"iss", "aud", "exp", "nbf", "iat", "jti"} <= set(c)
    write = client.request("POST", "/v2/tok/anon/blobs/uploads/", [("Authorization", f"Bearer {body['token']}")],
                           body=b"")
    assert write.status == 401
    params = challenge_params(write.header("WWW-Authenticate") or "")
    assert params["error"] == "insufficient_scope" and params["scope"] == "repository:tok/anon:pull,push"


def test_pusher_token_allows_push_reader_token_does_not(client):
    status, body = token(client, "repository:tok/p:pull,push", "repository:tok/other:pull", auth=MARK)
    assert status == 200
    granted = {a["name"]: a["actions"] for a in claims(body["token"])["access"]}
    assert granted == {"tok/p": ["pull", "push"], "tok/other": ["pull"]}
    ok = client.request("POST", "/v2/tok/p/blobs/uploads/", [("Authorization", f"Bearer {body['token']}")], body=b"")
    assert ok.status == 202
    status, body = token(client, "repository:tok/p:pull,push", auth=READER)
    assert status == 200 and claims(body["token"])["access"][0]["actions"] == ["pull"]
    denied = client.request("POST", "/v2/tok/p/blobs/uploads/", [("Authorization", f"Bearer {body['token']}")],
                            body=b"")
    assert denied.status == 401 and denied.json()["errors"][0]["code"] == "DENIED"
    assert "insufficient_scope" in (denied.header("WWW-Authenticate") or "")


def test_login_shape_and_wrong_password(client):
    # docker login: GET /token?account=mark&client_id=docker&offline_token=true&service=.. with Basic, no scope
    status, body = token(client, auth=MARK, account="mark", client_id="docker", offline_token="true")
    assert status == 200 and claims(body["token"])["access"] == []
    assert "refresh_token" not in body  # docker would store it in place of the password
    assert client.request("GET", "/v2/", [("Authorization", f"Bearer {body['token']}")]).status == 200
    status, body = token(client, auth=basic("mark", "wrong"), account="mark")
    assert status == 401
    message = body["errors"][0]["message"]
    assert "invalid username or password" in message and "docker logout" in message


def test_bad_scope_is_a_clear_400(client):
    for scope in ("repository:UPPER:pull", "nonsense", "repository::pull", "registry:other:*"):
        status, body = token(client, scope)
        assert status == 400, scope
        assert "scope" in body["errors"][0]["message"]


def test_invalid_bearer_on_ping_and_write(client):
    assert client.request("GET", "/v2/", [("Authorization", "Bearer a.b.c")]).status == 401
    none_alg = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    forged = none_alg + "." + base64.urlsafe_b64encode(json.dumps(
        {"sub": "mark", "access": [{"type": "repository", "name": "x", "actions": ["push"]}]}).encode()
    ).rstrip(b"=").decode() + "."
    reply = client.request("POST", "/v2/x/blobs/uploads/", [("Authorization", f"Bearer {forged}")], body=b"")
    assert reply.status == 401


def test_catalog_scope(client):
    status, body = token(client, "registry:catalog:*")
    assert status == 200 and claims(body["token"])["access"] == [
        {"type": "registry", "name": "catalog", "actions": ["*"]}]


def test_post_password_and_refresh_grants(client):
    service = service_of(client)
    form = urlencode({"grant_type": "password", "username": "mark", "password": "pusherpwd", "service": service,
                      "scope": "repository:tok/post:pull,push", "client_id": "containerd", "access_type": "offline"})
    headers = [("Content-Type", "application/x-www-form-urlencoded")]
    reply = client.request("POST", "/token", headers, body=form.encode())
    assert reply.status == 200, reply.body
    body = reply.json()
    assert claims(body["access_token"])["access"][0]["actions"] == ["pull", "push"]
    refresh = body["refresh_token"]
    again = client.request("POST", "/token", headers, body=urlencode({
        "grant_type": "refresh_token", "refresh_token": refresh, "service": service,
        "scope": "repository:tok/post:pull"}).encode())
    assert again.status == 200 and claims(again.json()["access_token"])["sub"] == "mark"
    # a refresh token is not an access token
    assert client.request("GET", "/v2/", [("Authorization", f"Bearer {refresh}")]).status == 401
    wrong = client.request("POST", "/token", headers, body=urlencode({
        "grant_type": "password", "username": "mark", "password": "nope", "service": service}).encode())
    assert wrong.status == 401
    odd = client.request("POST", "/token", headers, body=b"grant_type=implicit")
    assert odd.status == 400


def test_password_and_group_changes_void_tokens(proxy, client):
    status, body = token(client, "repository:tok/void:pull,push", auth=MARK)
    bearer = [("Authorization", f"Bearer {body['token']}")]
    assert client.request("POST", "/v2/tok/void/blobs/uploads/", bearer, body=b"").status == 202
    htpasswd = proxy.workdir / "users.htpasswd"
    subprocess.run(["htpasswd", "-bB", "-C", "5", str(htpasswd), "mark", "newpwd"], check=True,
                   capture_output=True)
    time.sleep(1.5)  # the proxy re-checks the files' mtime at most once a second
    assert client.request("POST", "/v2/tok/void/blobs/uploads/", bearer, body=b"").status == 401
    status, body = token(client, "repository:tok/void:pull,push", auth=basic("mark", "newpwd"))
    assert status == 200
    bearer = [("Authorization", f"Bearer {body['token']}")]
    assert client.request("POST", "/v2/tok/void/blobs/uploads/", bearer, body=b"").status == 202
    groups = proxy.workdir / "users.groups"
    groups.write_text("pusher: someone-else\n")
    time.sleep(1.5)
    assert client.request("POST", "/v2/tok/void/blobs/uploads/", bearer, body=b"").status == 401


def test_replicas_share_tokens_only_with_a_shared_key(proxy_factory, tls_files, tmp_path):
    key = tmp_path / "token.key"
    key.write_text(base64.b64encode(secrets.token_bytes(48)).decode())  # a pattern key is refused (auth.keys)
    shared = {"auth": {"token": {"secret_file": str(key), "service": "registry.test"}}}
    a, b = proxy_factory(overrides=shared), proxy_factory(overrides=shared)
    other = proxy_factory(overrides={"auth": {"token": {"service": "registry.test"}}})
    ca, cb, cother = (Client(p.url, tls_files.ca_cert) for p in (a, b, other))
    status, body = token(ca, "repository:tok/rep:pull,push", auth=MARK)
    assert status == 200
    bearer = [("Authorization", f"Bearer {body['token']}")]
    assert cb.request("POST", "/v2/tok/rep/blobs/uploads/", bearer, body=b"").status == 202
    assert cother.request("POST", "/v2/tok/rep/blobs/uploads/", bearer, body=b"").status == 401
    assert "random key" in other.log_text() and "random key" not in a.log_text()


def test_realm_override_and_tokens_never_logged(proxy_factory, tls_files):
    proxy = proxy_factory(overrides={"auth": {"token": {"realm": "https://registry.example.org/token"}}})
    client = Client(proxy.url, tls_files.ca_cert)
    ping = client.request("GET", "/v2/")
    assert challenge_params(ping.header("WWW-Authenticate") or "")["realm"] == "https://registry.example.org/token"
    status, body = token(client, "repository:tok/log:pull,push", auth=MARK)
    assert status == 200
    client.request("POST", "/v2/tok/log/blobs/uploads/", [("Authorization", f"Bearer {body['token']}")], body=b"")
    log = proxy.log_text()
    assert body["token"] not in log and body["token"].split(".")[2] not in log and "pusherpwd" not in log


def test_check_config_reports_bearer(proxy):
    out = subprocess.run([sys.executable, "-m", "proxy", "check-config", "--config", str(proxy.config_path)],
                         capture_output=True, text=True, check=False)
    assert out.returncode == 0 and "challenge: bearer" in out.stdout
