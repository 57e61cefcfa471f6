"""Which headers cross the proxy in each direction."""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from proxy.http.headers import downstream_headers, upstream_headers

BACKEND = "http://127.0.0.1:5000"
PUBLIC = "https://registry.example:5043"


def up(pairs: list[tuple[str, str]], content_length: int | None = None) -> CIMultiDict[str]:
    return upstream_headers(
        CIMultiDictProxy(CIMultiDict(pairs)),
        host="registry.example:5043",
        proto="https",
        client_ip="192.0.2.7",
        content_length=content_length,
    )


def down(pairs: list[tuple[str, str]]) -> CIMultiDict[str]:
    return downstream_headers(CIMultiDict(pairs), backend_origin=BACKEND, public_origin=PUBLIC)


# ------------------------------------------------------------------ upstream


def test_repeated_accept_values_kept_in_order() -> None:
    accepts = [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ]
    out = up([("Accept", a) for a in accepts] + [("User-Agent", "docker/20.10")])
    assert out.getall("Accept") == accepts
    assert out["User-Agent"] == "docker/20.10"


def test_other_headers_pass_with_their_case_and_order() -> None:
    out = up([("Content-Type", "application/octet-stream"), ("Content-Range", "0-99"), ("X-Custom", "1"),
              ("x-custom", "2"), ("If-None-Match", '"abc"')])
    assert out.getall("X-Custom") == ["1", "2"]
    assert out["Content-Type"] == "application/octet-stream"
    assert out["Content-Range"] == "0-99"
    assert out["If-None-Match"] == '"abc"'


def test_credentials_forwarding_and_hop_by_hop_dropped() -> None:
    dropped = [
        ("Authorization", "Basic bWFyazpwdXNoZXJwd2Q="),
        ("authorization", "Bearer abc"),
        ("Proxy-Authorization", "Basic eDp5"),
        ("Proxy-Connection", "keep-alive"),
        ("Proxy-Anything", "x"),
        ("Connection", "keep-alive, X-Secret-Hop"),
        ("X-Secret-Hop", "must go"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Trailer", "Expires"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("Forwarded", "for=1.2.3.4;host=evil.example;proto=http"),
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "http"),
        ("X-Forwarded-Port", "80"),
        ("X-Real-IP", "1.2.3.4"),
        ("Cookie", "session=1"),
        ("Expect", "100-continue"),
    ]
    out = up([*dropped, ("Accept", "*/*")])
    names = {n.lower() for n in out}
    for name, _ in dropped:
        if name.lower().startswith("x-forwarded-") and name.lower() != "x-forwarded-port":
            continue  # replaced by ours, checked below
        assert name.lower() not in names, name
    assert "x-forwarded-port" not in names
    assert out.getall("X-Forwarded-For") == ["192.0.2.7"]
    assert out.getall("X-Forwarded-Host") == ["registry.example:5043"]
    assert out.getall("X-Forwarded-Proto") == ["https"]
    assert out["Accept"] == "*/*"
    assert not any("evil" in v or "1.2.3.4" in v or "Basic" in v or "Bearer" in v for v in out.values())


def test_connection_tokens_across_several_connection_headers() -> None:
    out = up([("Connection", "X-A"), ("connection", " x-b ,close"), ("X-A", "1"), ("X-B", "2"), ("X-C", "3")])
    assert "X-A" not in out and "X-B" not in out and "Connection" not in out
    assert out["X-C"] == "3"


def test_host_is_ours() -> None:
    out = up([("Host", "evil.example"), ("host", "other")])
    assert out.getall("Host") == ["registry.example:5043"]


def test_content_length_is_set_from_the_body_we_forward() -> None:
    assert up([("Content-Length", "999")], content_length=42).getall("Content-Length") == ["42"]
    assert up([("Content-Length", "0")], content_length=0).getall("Content-Length") == ["0"]
    assert "Content-Length" not in up([("Content-Length", "999"), ("Content-Length", "5")])
    assert "Content-Length" not in up([])


def test_upstream_does_not_modify_the_input() -> None:
    incoming = CIMultiDict([("Authorization", "Basic eDp5"), ("Accept", "a")])
    up_copy = list(incoming.items())
    upstream_headers(incoming, host="h", proto="https", client_ip="1.1.1.1", content_length=None)
    assert list(incoming.items()) == up_copy


# ------------------------------------------------------------------ downstream


def test_location_at_backend_origin_is_rewritten() -> None:
    loc = f"{BACKEND}/v2/app/blobs/uploads/abc?_state=xyz"
    out = down([("Location", loc)])
    assert out.getall("Location") == [f"{PUBLIC}/v2/app/blobs/uploads/abc?_state=xyz"]


def test_other_locations_untouched() -> None:
    for loc in [
        "/v2/app/blobs/uploads/abc",
        f"{PUBLIC}/v2/app/blobs/uploads/abc",
        "https://s3.example/bucket/blob?sig=1",
        "http://127.0.0.1:50000/v2/x",  # another port on the same host is not the backend
        "http://127.0.0.1:5000.evil.example/v2/x",
    ]:
        assert down([("Location", loc)])["Location"] == loc


def test_downstream_drops_hop_by_hop_and_backend_version_header() -> None:
    out = down([
        ("Docker-Distribution-Api-Version", "registry/2.0"),
        ("Connection", "keep-alive, X-Hop"),
        ("X-Hop", "1"),
        ("Keep-Alive", "timeout=5"),
        ("Transfer-Encoding", "chunked"),
        ("Proxy-Authenticate", "Basic"),
        ("Upgrade", "h2c"),
        ("Trailer", "x"),
        ("Docker-Content-Digest", "sha256:" + "a" * 64),
        ("Content-Type", "application/json"),
        ("Content-Length", "12"),
        ("WWW-Authenticate", 'Bearer realm="x"'),
        ("Range", "0-99"),
        ("Docker-Upload-UUID", "u"),
    ])
    assert set(out.keys()) == {
        "Docker-Content-Digest", "Content-Type", "Content-Length", "WWW-Authenticate", "Range", "Docker-Upload-UUID",
    }
    assert out["Content-Length"] == "12"


def test_downstream_keeps_repeated_values() -> None:
    out = down([("Link", "<a>; rel=next"), ("Link", "<b>; rel=prev"), ("Warning", "1"), ("Warning", "2")])
    assert out.getall("Link") == ["<a>; rel=next", "<b>; rel=prev"]
    assert out.getall("Warning") == ["1", "2"]
