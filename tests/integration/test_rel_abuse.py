"""Abuse: brute force is throttled, user names do not leak through timing, secrets never leak.

Source addresses 127.0.0.1 and 127.0.0.2 are two "clients": both reach a
proxy on 127.0.0.1, and the proxy keys its throttle on the TCP peer.
"""

from __future__ import annotations

import base64
import json
import statistics
import time

from tests.support.httpclient import Client, basic, upload_blob
from tests.support.rawhttp import BoundClient
from tests.support.tap import Tap

MARK = basic("mark", "pusherpwd")
UPLOAD = "/v2/abuse/x/blobs/uploads/"


def test_brute_force_is_throttled_per_ip_and_per_user(proxy_factory, tls_files):
    proxy = proxy_factory(challenge="basic", overrides={"throttle": {"failures": 5, "failures_per_ip": 5, "window": 4}})
    attacker = BoundClient(proxy.url, tls_files.ca_cert, "127.0.0.2")
    other = BoundClient(proxy.url, tls_files.ca_cert, "127.0.0.1")
    for i in range(5):
        reply = attacker.request("GET", "/v2/", [("Authorization", basic(f"guess{i}", "nope"))])
        assert reply.status == 401
    throttled = attacker.request("GET", "/v2/", [("Authorization", basic("guess9", "nope"))])
    assert throttled.status == 429
    assert throttled.header("Content-Type").startswith("application/json")
    assert throttled.json()["errors"][0]["code"] == "TOO_MANY_REQUESTS"
    assert 1 <= int(throttled.header("Retry-After") or "0") <= 4
    assert throttled.all("Docker-Distribution-Api-Version") == ["registry/2.0"]
    # the right password from the throttled address is refused too (no bcrypt is run at all) ...
    assert attacker.request("POST", UPLOAD, [("Authorization", MARK)], body=b"").status == 429
    # ... the token endpoint shares the throttle (no service parameter: nothing else can refuse it first) ...
    assert attacker.request("GET", "/token?scope=repository:abuse/x:pull", [("Authorization", MARK)]).status == 429
    # ... while another address logs in, and that success resets nothing for the attacker
    assert other.request("POST", UPLOAD, [("Authorization", MARK)], body=b"").status == 202
    assert attacker.request("GET", "/v2/", [("Authorization", MARK)]).status == 429
    # anonymous pulls never touch the throttle
    assert attacker.request("GET", "/v2/_catalog").status == 200
    # per (address, user): failures for "reader" from the other address refuse reader from there
    for _ in range(5):
        assert other.request("GET", "/v2/", [("Authorization", basic("reader", "bad"))]).status == 401
    assert other.request("GET", "/v2/", [("Authorization", basic("reader", "readerpwd"))]).status == 429
    time.sleep(4.5)  # the window passes
    assert attacker.request("GET", "/v2/", [("Authorization", MARK)]).status == 200
    assert other.request("GET", "/v2/", [("Authorization", basic("reader", "readerpwd"))]).status == 200


def test_token_endpoint_is_throttled(proxy_factory, tls_files):
    proxy = proxy_factory(overrides={"throttle": {"failures": 3, "window": 300}})
    client = BoundClient(proxy.url, tls_files.ca_cert, "127.0.0.3")
    for _ in range(3):
        assert client.request("GET", "/token", [("Authorization", basic("mark", "wrong"))]).status == 401
    reply = client.request("GET", "/token", [("Authorization", MARK)])
    assert reply.status == 429 and reply.header("Retry-After")
    form = b"grant_type=password&username=mark&password=pusherpwd"
    posted = client.request("POST", "/token", [("Content-Type", "application/x-www-form-urlencoded")], body=form)
    assert posted.status == 429 and "token" not in posted.json()


def _timings(client: Client, auth: str, n: int) -> list[float]:
    out = []
    for _ in range(n):
        started = time.perf_counter()
        reply = client.request("GET", "/v2/", [("Authorization", auth)])
        out.append(time.perf_counter() - started)
        assert reply.status == 401
    return out


def test_unknown_user_costs_the_same_as_a_wrong_password(proxy_factory, tls_files):
    """Interleaved samples, compared by median and p90 ratio: a band, not an absolute threshold.

    An unknown user that skipped bcrypt would be ~100x faster (a TLS round trip
    vs a cost-5 hash plus the round trip); the band only needs to catch that.
    """
    proxy = proxy_factory(challenge="basic", overrides={"throttle": {"enabled": False}})
    client = Client(proxy.url, tls_files.ca_cert)
    _timings(client, basic("mark", "warmup"), 3)
    known: list[float] = []
    unknown: list[float] = []
    for i in range(12):  # interleave so drift in machine load hits both alike
        known += _timings(client, basic("mark", f"wrong{i}"), 5)
        unknown += _timings(client, basic(f"nouser{i}", f"wrong{i}"), 5)
    known.sort()
    unknown.sort()

    def p90(values: list[float]) -> float:
        return values[int(len(values) * 0.9)]

    median_ratio = statistics.median(unknown) / statistics.median(known)
    p90_ratio = p90(unknown) / p90(known)
    print(f"median known {statistics.median(known) * 1000:.1f} ms unknown {statistics.median(unknown) * 1000:.1f} ms"
          f" ratio {median_ratio:.2f}; p90 ratio {p90_ratio:.2f}")
    assert 0.5 < median_ratio < 2.0
    assert 0.4 < p90_ratio < 2.5
    # rank test: the share of pairs where unknown is faster must be near one half (0.5 = same distribution)
    faster = sum(1 for u in unknown for k in known if u < k) / (len(unknown) * len(known))
    assert 0.2 < faster < 0.8, faster


def test_no_secret_in_logs_error_bodies_or_backend_requests(proxy_factory, tls_files, registry):
    tap = Tap(registry.port).start()
    try:
        proxy = proxy_factory(backend=tap.url)
        client = Client(proxy.url, tls_files.ca_cert)
        passwords = ["pusherpwd", "readerpwd", "Wr0ngSecret!x", "an0ther-Bad-one"]
        bodies: list[bytes] = []
        tokens: list[str] = []
        # token flow: Basic to /token, then Bearer for the API
        for user, password in (("mark", "pusherpwd"), ("reader", "readerpwd")):
            reply = client.request("GET", "/token?scope=repository:leak/app:pull,push&service=",
                                   [("Authorization", basic(user, password))])
            if reply.status == 400:  # service must match the proxy's; ask without it
                reply = client.request("GET", "/token?scope=repository:leak/app:pull,push",
                                       [("Authorization", basic(user, password))])
            assert reply.status == 200, reply.body
            tokens.append(reply.json()["token"])
        form = b"grant_type=password&username=mark&password=pusherpwd&access_type=offline"
        posted = client.request("POST", "/token", [("Content-Type", "application/x-www-form-urlencoded")], body=form)
        assert posted.status == 200
        tokens.append(posted.json()["refresh_token"])
        bearer = "Bearer " + tokens[0]
        data = b"leak test layer"
        import hashlib

        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        assert upload_blob(client, "leak/app", bearer, iter([data]), digest).status == 201
        assert upload_blob(client, "leak/app", MARK, iter([data]), digest).status == 201  # Basic on writes too
        # failures whose error bodies we keep
        for auth in (basic("mark", "Wr0ngSecret!x"), basic("nouser", "an0ther-Bad-one"), "Bearer " + tokens[1],
                     "Bearer " + tokens[0] + "x", basic("reader", "readerpwd")):
            for method, path in (("GET", "/v2/"), ("POST", "/v2/leak/app/blobs/uploads/"),
                                 ("DELETE", f"/v2/leak/app/blobs/{digest}"), ("GET", "/token")):
                reply = client.request(method, path, [("Authorization", auth)], body=b"" if method == "POST" else None)
                if reply.status >= 400:
                    bodies.append(reply.body)
                    bodies.append(json.dumps(reply.headers).encode())
        assert bodies
        secrets = passwords + tokens
        secrets += [base64.b64encode(f"{u}:{p}".encode()).decode() for u in ("mark", "reader", "nouser")
                    for p in passwords]
        secrets += [t.split(".")[2] for t in tokens]  # a signature alone is a secret too
        log = proxy.log_text()
        heads = b"\n".join(tap.request_heads()).decode("latin-1")
        assert "POST /v2/leak/app/blobs/uploads/" in heads  # the tap did see the session
        for secret in secrets:
            assert secret not in log, f"secret in the proxy log: {secret[:6]}..."
            assert secret not in heads, f"secret sent to the backend: {secret[:6]}..."
            for body in bodies:
                assert secret.encode() not in body, f"secret in an error body: {secret[:6]}..."
    finally:
        tap.stop()
