"""The one renderer: answers about one caller's credentials (401, 403, 429) are never stored by a cache.

A shared cache in front of the proxy that kept a 401 or 403 could serve one
client's refusal to another; ``Cache-Control: no-store`` forbids it, on the
aiohttp response and on the raw bytes written before a request exists alike.
"""

from __future__ import annotations

import json

import pytest

from auth.errors import ProxyError
from proxy.http.errors import API_VERSION, API_VERSION_HEADER, render, render_bytes

NO_STORE = [401, 403, 429]
STORABLE = [400, 404, 405, 408, 415, 500, 502, 503]


def parse(raw: bytes) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status line, header lines in order, body: enough of HTTP/1.1 to check what ``render_bytes`` wrote."""
    head, _, body = raw.partition(b"\r\n\r\n")
    status, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name, value) for name, _, value in (line.partition(": ") for line in lines)]
    return status, headers, body


def values(headers: list[tuple[str, str]], name: str) -> list[str]:
    return [v for n, v in headers if n.lower() == name.lower()]


def error(status: int, headers: dict[str, str] | None = None) -> ProxyError:
    return ProxyError(status, "CODE", "a message", headers)


@pytest.mark.parametrize("status", NO_STORE)
def test_credential_answers_are_no_store(status: int) -> None:
    response = render(error(status))
    assert response.headers.getall("Cache-Control") == ["no-store"]
    assert response.status == status
    _, headers, _ = parse(render_bytes(error(status)))
    assert values(headers, "Cache-Control") == ["no-store"]


@pytest.mark.parametrize("status", STORABLE)
def test_other_answers_say_nothing_about_caching(status: int) -> None:
    assert "Cache-Control" not in render(error(status)).headers
    _, headers, _ = parse(render_bytes(error(status)))
    assert values(headers, "Cache-Control") == []


def test_the_challenge_and_retry_after_are_kept_beside_no_store() -> None:
    challenge = 'Bearer realm="https://h/token",service="h",scope="repository:a:pull"'
    for err in (error(401, {"WWW-Authenticate": challenge}), error(429, {"Retry-After": "7"})):
        response = render(err)
        _, headers, _ = parse(render_bytes(err))
        for name, value in err.headers.items():
            assert response.headers.getall(name) == [value]
            assert values(headers, name) == [value]
        assert response.headers.getall("Cache-Control") == ["no-store"]
        assert values(headers, "Cache-Control") == ["no-store"]


def test_a_cache_control_already_on_the_error_is_replaced_not_doubled() -> None:
    err = error(403, {"Cache-Control": "max-age=600"})
    assert render(err).headers.getall("Cache-Control") == ["no-store"]
    assert values(parse(render_bytes(err))[1], "Cache-Control") == ["no-store"]


def test_rendering_does_not_change_the_error() -> None:
    err = error(401, {"WWW-Authenticate": 'Basic realm="r"'})
    render(err)
    render_bytes(err)
    assert err.headers == {"WWW-Authenticate": 'Basic realm="r"'}  # the error may be rendered again


@pytest.mark.parametrize("status", NO_STORE + STORABLE)
def test_both_renderings_are_the_same_answer(status: int) -> None:
    err = error(status)
    response = render(err)
    status_line, headers, body = parse(render_bytes(err))
    assert status_line.startswith(f"HTTP/1.1 {status} ")
    assert json.loads(body) == json.loads(response.body) == {  # type: ignore[arg-type]
        "errors": [{"code": "CODE", "message": "a message", "detail": None}]}
    assert values(headers, "Content-Length") == [str(len(body))]
    assert values(headers, API_VERSION_HEADER) == [API_VERSION] == response.headers.getall(API_VERSION_HEADER)
    assert values(headers, "Connection") == ["close"]
    assert values(headers, "Cache-Control") == response.headers.getall("Cache-Control", [])
