"""The route table: what exists, with which methods, and what is refused (judged on the raw path).

The name, tag and digest grammar itself is in ``test_names.py``.
"""

from __future__ import annotations

import pytest

from auth.access import Action
from auth.errors import ProxyError
from auth.names import NAME_MAX
from auth.routes import Route, Router

ROUTER = Router(token_path="/token")
parse_route = ROUTER.parse

DIGEST = "sha256:" + "a" * 64
UUID = "3f2a1c44-55e6-4b7f-9c1d-0e9a8b7c6d5e"

# (path, kind, name, allowed methods)
ROUTES: list[tuple[str, str, str | None, set[str]]] = [
    ("/v2/", "base", None, {"GET", "HEAD"}),
    ("/v2", "base", None, {"GET", "HEAD"}),
    ("/v2/_catalog", "catalog", None, {"GET", "HEAD"}),
    ("/v2/_catalog?n=10&last=a", "catalog", None, {"GET", "HEAD"}),
    ("/v2/team/app/tags/list", "tags", "team/app", {"GET", "HEAD"}),
    ("/v2/team/app/tags/list?n=5", "tags", "team/app", {"GET", "HEAD"}),
    ("/v2/team/app/manifests/latest", "manifest", "team/app", {"GET", "HEAD", "PUT", "DELETE"}),
    (f"/v2/team/app/manifests/{DIGEST}", "manifest", "team/app", {"GET", "HEAD", "PUT", "DELETE"}),
    (f"/v2/team/app/blobs/{DIGEST}", "blob", "team/app", {"GET", "HEAD", "DELETE"}),
    ("/v2/team/app/blobs/uploads/", "upload", "team/app", {"POST"}),
    (f"/v2/team/app/blobs/uploads/{UUID}", "upload", "team/app", {"GET", "HEAD", "PATCH", "PUT", "DELETE"}),
    (f"/v2/team/app/blobs/uploads/{UUID}?_state=abc&digest={DIGEST}", "upload", "team/app",
     {"GET", "HEAD", "PATCH", "PUT", "DELETE"}),
    (f"/v2/team/app/referrers/{DIGEST}", "referrers", "team/app", {"GET", "HEAD"}),
    ("/v2/a/b/c/manifests/x", "manifest", "a/b/c", {"GET", "HEAD", "PUT", "DELETE"}),
    ("/v2/app/manifests/v1.0.0-rc_1", "manifest", "app", {"GET", "HEAD", "PUT", "DELETE"}),
    ("/v2/my-app__x.y/manifests/1", "manifest", "my-app__x.y", {"GET", "HEAD", "PUT", "DELETE"}),
    # the suffix words are legal inside a name; the registry routes on the last one
    ("/v2/a/manifests/b/manifests/x", "manifest", "a/manifests/b", {"GET", "HEAD", "PUT", "DELETE"}),
    ("/v2/tags/tags/list", "tags", "tags", {"GET", "HEAD"}),
    (f"/v2/blobs/uploads/blobs/{DIGEST}", "blob", "blobs/uploads", {"GET", "HEAD", "DELETE"}),
]
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]
EXPECTED_ACTION = {"GET": Action.PULL, "HEAD": Action.PULL, "POST": Action.PUSH, "PUT": Action.PUSH,
                   "PATCH": Action.PUSH, "DELETE": Action.DELETE}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(("path", "kind", "name", "allowed"), ROUTES, ids=[r[0][:60] for r in ROUTES])
def test_route_table(path: str, kind: str, name: str | None, allowed: set[str], method: str) -> None:
    if method in allowed:
        route = parse_route(method, path)
        assert route == Route(kind, name, EXPECTED_ACTION[method])
        assert route.is_ping is (kind == "base")
    else:
        with pytest.raises(ProxyError) as info:
            parse_route(method, path)
        assert (info.value.status, info.value.code) == (405, "UNSUPPORTED")
        assert method in info.value.message


@pytest.mark.parametrize(
    "path",
    [
        "/v2/manifests/manifests/latest",  # a repository named "manifests"
        "/v2/team/manifests/manifests/latest",
        f"/v2/team/blobs/blobs/{DIGEST}",
        f"/v2/blobs/blobs/{DIGEST}",
    ],
)
def test_names_ending_in_a_route_word_are_routed_like_the_registry(path: str) -> None:
    """distribution matches ``{name}/manifests/{reference}`` with the name greedy: these repos exist."""
    route = parse_route("GET", path)
    prefix = path[len("/v2/"):].rsplit("/", 2)[0]
    assert route.name == prefix
    assert route.kind in ("manifest", "blob")


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE", "CONNECT", "FOO", "delete", "get", "Get", "PROPFIND", ""])
@pytest.mark.parametrize("path", ["/v2/", "/v2/a/manifests/x", "/elsewhere", "/v2/A/../manifests/x"])
def test_unknown_methods_are_405_before_anything_else(method: str, path: str) -> None:
    with pytest.raises(ProxyError) as info:
        parse_route(method, path)
    assert info.value.status == 405


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/v2/a/manifests/x"),
        ("POST", "/v2/a/manifests/x"),
        ("POST", f"/v2/a/blobs/uploads/{UUID}"),
        ("PATCH", "/v2/a/blobs/uploads/"),
        ("PUT", "/v2/a/blobs/uploads/"),
        ("GET", "/v2/a/blobs/uploads/"),
        ("PUT", f"/v2/a/blobs/{DIGEST}"),
        ("DELETE", "/v2/a/tags/list"),
        ("DELETE", "/v2/"),
        ("POST", "/v2/_catalog"),
        ("DELETE", f"/v2/a/referrers/{DIGEST}"),
    ],
)
def test_wrong_method_for_route_is_405(method: str, path: str) -> None:
    with pytest.raises(ProxyError) as info:
        parse_route(method, path)
    assert (info.value.status, info.value.code) == (405, "UNSUPPORTED")


@pytest.mark.parametrize(
    "path",
    ["/", "/v1/", "/v22/", "/v2x", "/tokens", "/token/", "/Token", "/tok%65n", "/index.html", "/V2/", "v2/", "",
     "/v2/a", "/v2/a/b",
     "/v2/a/tags", "/v2/a/tags/list/x", "/v2/a/manifests", "/v2/a/manifests/", "/v2/a/blobs",
     "/v2/_catalog/", "/v2/a/unknown/x", "/v2/a/referrers/"],
)
def test_outside_v2_or_unknown_route_is_404(path: str) -> None:
    with pytest.raises(ProxyError) as info:
        parse_route("GET", path)
    assert (info.value.status, info.value.code) == (404, "NOT_FOUND")


# ------------------------------------------------------------------ the token endpoint


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("path", ["/token", "/token?service=x&scope=repository:a:pull", "/token?"])
def test_token_path_is_the_token_route(method: str, path: str) -> None:
    route = parse_route(method, path)
    assert route.kind == "token" and route.is_token and not route.is_ping
    assert route.name is None and route.mount_from is None


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get", "TRACE", ""])
def test_token_route_allows_only_get_and_post(method: str) -> None:
    with pytest.raises(ProxyError) as info:
        parse_route(method, "/token")
    assert (info.value.status, info.value.code) == (405, "UNSUPPORTED")
    assert info.value.headers["Allow"] == "GET, POST"


def test_api_405_names_the_api_methods() -> None:
    with pytest.raises(ProxyError) as info:
        parse_route("PUT", "/v2/")
    assert info.value.headers["Allow"] == "GET, HEAD, POST, PUT, PATCH, DELETE"


@pytest.mark.parametrize("path", ["/tok%65n", "/%74oken", "/TOKEN", "/token/", "//token", "/./token"])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_token_path_is_matched_raw_never_decoded(method: str, path: str) -> None:
    """``/tok%65n`` decodes to ``/token``, but the route is judged on the raw path: it is no token route."""
    with pytest.raises(ProxyError) as info:
        parse_route(method, path)
    assert (info.value.status, info.value.code) == (404, "NOT_FOUND")


def test_token_route_follows_the_configured_path() -> None:
    router = Router(token_path="/auth/token")
    assert router.parse("POST", "/auth/token").kind == "token"
    with pytest.raises(ProxyError) as info:  # the default path is then nothing at all
        router.parse("GET", "/token")
    assert (info.value.status, info.value.code) == (404, "NOT_FOUND")


@pytest.mark.parametrize(
    "path",
    [
        "/v2/a/../b/manifests/x",
        "/v2/../v2/a/manifests/x",
        "/v2/a/./b/manifests/x",
        "/v2/%2e%2e/a/manifests/x",
        "/v2/a/%2e%2e/manifests/x",
        "/v2/team%2Fapp/manifests/x",
        "/v2/team%2fapp/manifests/x",
        "/v2/team//app/manifests/x",
        "/v2//app/manifests/x",
        "/v2/team\\app/manifests/x",
        "/v2/team\x00app/manifests/x",
        "/v2/team app/manifests/x",
        "/v2/tëam/manifests/x",
        "/v2/Team/App/manifests/x",
        "/v2/teamApp/manifests/x",
        "/v2/-team/manifests/x",
        "/v2/team-/manifests/x",
        "/v2/te..am/manifests/x",
        "/v2/team./manifests/x",
        "/v2/_x/manifests/x",
        "/v2/" + "a" * (NAME_MAX + 1) + "/manifests/x",
        "/v2/" + "/".join(["abc"] * 64) + "x/tags/list",  # 256 characters in short components
        "/v2/a/manifests/x/..",
        "/v2/a/manifests/.",
    ],
)
def test_bad_names_and_encodings_are_400_name_invalid(path: str) -> None:
    with pytest.raises(ProxyError) as info:
        parse_route("GET", path)
    assert (info.value.status, info.value.code) == (400, "NAME_INVALID"), path


def test_name_length_limit_is_255() -> None:
    longest = "/".join(["abc"] * 63) + "/ab"  # 63*4 + 2 = 254
    longest += "c"
    assert len(longest) == NAME_MAX
    assert parse_route("GET", f"/v2/{longest}/tags/list").name == longest
    with pytest.raises(ProxyError):
        parse_route("GET", f"/v2/{longest}x/tags/list")


BAD_REFERENCES = ["-tag", ".tag", "t" * 129, "sha256:short", "ta:g", "x#y"]
BAD_DIGESTS = ["latest", "sha256:" + "a" * 31, "SHA256:" + "a" * 64]
UNPARSABLE_DIGESTS = ["sha256:" + "a" * 31, "sha256:totallywrong"]  # the registry's blob route takes these


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize(
    ("path", "code"),
    [
        *((f"/v2/a/manifests/{ref}", "MANIFEST_UNKNOWN") for ref in BAD_REFERENCES),
        *((f"/v2/a/blobs/{digest}", "BLOB_UNKNOWN") for digest in BAD_DIGESTS if digest not in UNPARSABLE_DIGESTS),
        *((f"/v2/a/referrers/{digest}", "MANIFEST_UNKNOWN") for digest in BAD_DIGESTS),
    ],
)
def test_a_read_of_a_bad_reference_is_404_unknown(method: str, path: str, code: str) -> None:
    """What cannot exist is "unknown", as the registry answers a read of it; it is still never forwarded."""
    with pytest.raises(ProxyError) as info:
        parse_route(method, path)
    assert (info.value.status, info.value.code) == (404, code)


@pytest.mark.parametrize(
    ("method", "path", "code"),
    [
        *(("PUT", f"/v2/a/manifests/{ref}", "DIGEST_INVALID" if ":" in ref else "TAG_INVALID")
          for ref in BAD_REFERENCES),
        *(("DELETE", f"/v2/a/manifests/{ref}", "DIGEST_INVALID" if ":" in ref else "TAG_INVALID")
          for ref in BAD_REFERENCES),
        *(("DELETE", f"/v2/a/blobs/{digest}", "DIGEST_INVALID") for digest in BAD_DIGESTS),
    ],
)
def test_a_write_of_a_bad_reference_stays_400_invalid(method: str, path: str, code: str) -> None:
    with pytest.raises(ProxyError) as info:
        parse_route(method, path)
    assert (info.value.status, info.value.code) == (400, code)


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("digest", UNPARSABLE_DIGESTS)
def test_a_blob_read_of_an_unparsable_digest_is_400_as_the_registry_says(method: str, digest: str) -> None:
    with pytest.raises(ProxyError) as info:
        parse_route(method, f"/v2/a/blobs/{digest}")
    assert (info.value.status, info.value.code) == (400, "DIGEST_INVALID")


def test_a_bad_name_is_400_even_for_a_read() -> None:
    """Only the reference turned into 404: a name that can never be valid is still NAME_INVALID."""
    with pytest.raises(ProxyError) as info:
        parse_route("GET", "/v2/A/manifests/-tag")
    assert (info.value.status, info.value.code) == (400, "NAME_INVALID")


def test_tag_of_128_characters_is_fine() -> None:
    assert parse_route("GET", "/v2/a/manifests/" + "t" * 128).kind == "manifest"


# ------------------------------------------------------------------ cross-repository mount


def test_mount_sets_mount_from() -> None:
    route = parse_route("POST", f"/v2/team/app/blobs/uploads/?mount={DIGEST}&from=other/repo")
    assert route == Route("upload", "team/app", Action.PUSH, mount_from="other/repo")


def test_mount_from_is_decoded_like_the_registry_decodes_it() -> None:
    route = parse_route("POST", f"/v2/app/blobs/uploads/?from=other%2Frepo&mount={DIGEST}")
    assert route.mount_from == "other/repo"


def test_plain_upload_start_has_no_mount() -> None:
    assert parse_route("POST", "/v2/app/blobs/uploads/").mount_from is None
    assert parse_route("POST", f"/v2/app/blobs/uploads/?digest={DIGEST}").mount_from is None


@pytest.mark.parametrize("source", ["../secret", "Other/Repo", "a//b", "a%2F..%2Fb", "%2e%2e", "a b", "x" * 300])
def test_invalid_mount_source_is_400(source: str) -> None:
    with pytest.raises(ProxyError) as info:
        parse_route("POST", f"/v2/app/blobs/uploads/?mount={DIGEST}&from={source}")
    assert (info.value.status, info.value.code) == (400, "NAME_INVALID")


def test_repeated_mount_source_is_judged_as_the_registry_reads_it() -> None:
    """Go's ``r.FormValue("from")`` takes the FIRST value: judging the last one checks the wrong repo."""
    path = f"/v2/app/blobs/uploads/?mount={DIGEST}&from=first/repo&from=second/repo"
    try:
        route = parse_route("POST", path)
    except ProxyError as exc:  # refusing the ambiguity outright is fine too
        assert exc.status == 400
    else:
        assert route.mount_from == "first/repo"
