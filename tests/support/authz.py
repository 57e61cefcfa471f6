"""Helpers for the authorization tests: a tapped proxy with its own rules, tokens, reloads, raw Host.

The authorization tests must prove what the registry saw, so every proxy
they start sits behind a :class:`~tests.support.tap.Tap` and carries its own
``access`` rules and group file (the shared ``tapped`` fixture has neither).
"""

from __future__ import annotations

import base64
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit

import yaml

from tests.support.httpclient import Client, Reply, basic
from tests.support.proxyproc import ProxyProcess
from tests.support.tap import Tap

MARK = basic("mark", "pusherpwd")  # group pusher
READER = basic("reader", "readerpwd")
RELOADED = "SIGHUP: config reloaded"


@dataclass
class Rig:
    """A started proxy, the tap in front of its backend, and a client that trusts the test CA."""

    proxy: ProxyProcess
    tap: Tap
    client: Client

    def nothing_forwarded(self) -> bool:
        return self.tap.requests() == []


def start_rig(proxy_factory: Callable[..., ProxyProcess], tap: Tap, ca_cert: Any, *, access: dict[str, Any],
              groups: str = "pusher: mark\n", challenge: str = "bearer",
              overrides: dict[str, Any] | None = None) -> Rig:
    """A proxy whose backend is ``tap``, with ``groups`` written as its users.groups before it starts."""
    proxy = proxy_factory(backend=tap.url, challenge=challenge, access=access, overrides=overrides, start=False)
    (proxy.workdir / "users.groups").write_text(groups)
    proxy.start()
    return Rig(proxy, tap, Client(proxy.url, ca_cert))


def unique(prefix: str) -> str:
    """A repository name no other test (the registry lives for the whole session) has used."""
    return f"{prefix}-{os.urandom(4).hex()}"


def challenge_params(value: str) -> dict[str, str]:
    return dict(re.findall(r'(\w+)="([^"]*)"', value))


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def granted(token: str, name: str) -> list[str]:
    """The actions the token grants on repository ``name``."""
    return sorted(a for g in claims(token)["access"] if g["type"] == "repository" and g["name"] == name
                  for a in g["actions"])


def bearer(token: str) -> list[tuple[str, str]]:
    return [("Authorization", f"Bearer {token}")]


def token_from(client: Client, challenge: str, auth: str | None) -> str:
    """Do what a registry client does with a challenge: ask its realm for exactly its scopes.

    The ``scope`` parameter may name several scopes separated by spaces; each
    becomes one ``scope`` query parameter, as docker and containerd send them.
    """
    params = challenge_params(challenge)
    scopes = params["scope"].split(" ") if params.get("scope") else []
    realm = urlsplit(params["realm"])
    query = urlencode([("service", params["service"]), *[("scope", s) for s in scopes]])
    reply = client.request("GET", f"{realm.path}?{query}", [("Authorization", auth)] if auth else [])
    assert reply.status == 200, (reply.status, reply.body)
    return str(reply.json()["token"])


def token(client: Client, scopes: Iterable[str], auth: str | None) -> str:
    """A token for ``scopes`` from the proxy's realm, with the service the ping's challenge names."""
    ping = client.request("GET", "/v2/")
    assert ping.status == 401, ping.status
    params = challenge_params(ping.header("WWW-Authenticate") or "")
    scope = " ".join(scopes)
    return token_from(client, f'Bearer realm="{params["realm"]}",service="{params["service"]}",scope="{scope}"',
                      auth)


def reload_config(proxy: ProxyProcess, change: Callable[[dict[str, Any]], None], timeout: float = 30) -> None:
    """Edit proxy.yml with ``change``, send SIGHUP, and wait for one more "config reloaded" log line."""
    config = yaml.safe_load(proxy.config_path.read_text())
    change(config)
    proxy.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    before = proxy.log_text().count(RELOADED)
    proxy.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + timeout
    while proxy.log_text().count(RELOADED) <= before:
        assert "keeping the old config" not in proxy.log_text(), proxy.log_tail()
        assert time.monotonic() < deadline, f"no reload in the log:\n{proxy.log_tail()}"
        time.sleep(0.05)


def request_with_host(client: Client, method: str, path: str, hosts: Iterable[str],
                      headers: Iterable[tuple[str, str]] = (), body: bytes = b"") -> Reply:
    """A request whose ``Host`` lines are exactly ``hosts`` (http.client would add its own)."""
    conn = client.connect()
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for host in hosts:
            conn.putheader("Host", host)
        for name, value in headers:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        resp = conn.getresponse()
        return Reply(resp.status, resp.getheaders(), resp.read())
    finally:
        conn.close()


def path_of(location: str) -> str:
    parts = urlsplit(location)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def error_code(reply: Reply) -> str:
    return str(reply.json()["errors"][0]["code"])


def error_message(reply: Reply) -> str:
    return str(reply.json()["errors"][0]["message"])
