"""``judge_body_type``: no form bodies on writes, because the registry would read parameters from them.

distribution reads ``from``, ``mount``, ``digest`` and ``_state`` with Go's
``FormValue``, which lets a form body win over the query string the proxy
judged; refusing such bodies keeps the judged query the only source.
"""

from __future__ import annotations

import pytest

from auth.errors import ProxyError
from auth.routes import judge_body_type

WRITES = ["POST", "PUT", "PATCH"]
FORMS = [
    "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=utf-8",
    "APPLICATION/X-WWW-FORM-URLENCODED",
    "Application/X-Www-Form-Urlencoded",
    " application/x-www-form-urlencoded",
    "multipart/form-data; boundary=xyz",
    "Multipart/Form-Data; boundary=xyz",
    "multipart/mixed",
    "MULTIPART/ALTERNATIVE",
    "text/plain; x=application/x-www-form-urlencoded",  # looser than Go's parser on purpose
]
FINE = [
    "application/octet-stream",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.index.v1+json; charset=utf-8",
    "",
]


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("content_type", FORMS)
def test_a_form_body_on_a_write_is_415(method: str, content_type: str) -> None:
    with pytest.raises(ProxyError) as info:
        judge_body_type(method, [content_type])
    err = info.value
    assert (err.status, err.code) == (415, "UNSUPPORTED")
    assert content_type.strip().lower() not in err.message.lower()  # the client's value is not echoed
    assert "application/octet-stream" in err.message  # says what to send instead


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize("content_type", FINE)
def test_registry_bodies_pass(method: str, content_type: str) -> None:
    judge_body_type(method, [content_type])  # no exception


@pytest.mark.parametrize("method", WRITES)
def test_no_content_type_passes(method: str) -> None:
    judge_body_type(method, [])


@pytest.mark.parametrize("method", WRITES)
@pytest.mark.parametrize(
    "content_types",
    [
        ["application/octet-stream", "application/octet-stream"],
        ["application/octet-stream", "application/x-www-form-urlencoded"],
        ["application/x-www-form-urlencoded", "application/octet-stream"],
        ["", ""],
        ["a", "b", "c"],
    ],
)
def test_two_content_type_headers_on_a_write_are_400(method: str, content_types: list[str]) -> None:
    """Go reads the first, other software may read the last: the ambiguity is refused whatever they say."""
    with pytest.raises(ProxyError) as info:
        judge_body_type(method, content_types)
    assert (info.value.status, info.value.code) == (400, "UNSUPPORTED")


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "OPTIONS"])
@pytest.mark.parametrize(
    "content_types",
    [["application/x-www-form-urlencoded"], ["multipart/form-data"], ["a", "b"]],
)
def test_methods_without_a_parsed_body_are_not_judged(method: str, content_types: list[str]) -> None:
    """Go's ``ParseForm`` reads a body only for POST, PUT and PATCH."""
    judge_body_type(method, content_types)
