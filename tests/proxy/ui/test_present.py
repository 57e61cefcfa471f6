"""The pure half of the catalog's pages: escaping, natural tag order, sizes, times, links, redirects."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from proxy.ui.present import (
    Html,
    esc,
    external_link,
    fmt,
    format_time,
    human_size,
    join,
    parse_created,
    safe_next,
    short_digest,
    sort_tags,
    squash,
)


def test_sort_puts_latest_first_and_numbers_in_numeric_order() -> None:
    tags = ["1.10", "1.9", "latest", "1.2.10", "1.2.9", "2", "10", "1.10.1", "v1.0", "alpine", "1.9-alpine", "01"]
    assert sort_tags(tags) == ["latest", "01", "1.2.9", "1.2.10", "1.9", "1.9-alpine", "1.10", "1.10.1", "2", "10",
                               "alpine", "v1.0"]


def test_sort_is_case_insensitive_and_total() -> None:
    assert sort_tags(["B", "a", "A", "b"]) == ["A", "a", "B", "b"]
    assert sort_tags(["x1y2", "x1y10", "x01y3"]) == ["x1y2", "x01y3", "x1y10"]


def test_fmt_escapes_every_argument_in_text_and_attributes() -> None:
    hostile = '"><img src=x onerror=alert(1)>\'{0}'
    out = fmt('<a title="{}">{}</a>', hostile, hostile)
    assert "<img" not in out and '"><' not in out
    assert out.count("&quot;") == 2 and out.count("&#x27;") == 2
    assert "{0}" in out  # substituted text is never read as a format field


def test_html_values_pass_through_once() -> None:
    inner = fmt("<b>{}</b>", "<i>")
    assert fmt("<p>{}</p>", inner) == "<p><b>&lt;i&gt;</b></p>"
    assert isinstance(join([inner, "<x>"], "<br>"), Html)
    assert join([inner, "<x>"], ", ") == "<b>&lt;i&gt;</b>, &lt;x&gt;"
    assert esc(inner) is inner


def test_squash_cuts_long_pushed_strings() -> None:
    assert squash("abc", 5) == "abc"
    assert squash("a" * 10, 4) == "aaaa… (6 more characters)"


@pytest.mark.parametrize(("size", "text"), [(None, "—"), (-1, "—"), (0, "0 B"), (999, "999 B"), (1000, "1.0 kB"),
                                            (3_100_000, "3.1 MB"), (2_500_000_000, "2.5 GB"), (10**16, "10000.0 TB")])
def test_human_size(size: int | None, text: str) -> None:
    assert human_size(size) == text


def test_short_digest() -> None:
    assert short_digest("sha256:" + "ab" * 32) == "sha256:abababababab"
    assert short_digest("odd") == "odd"


def test_created_times_as_go_writes_them() -> None:
    assert parse_created("2024-05-01T12:34:56.123456789Z") == datetime(2024, 5, 1, 12, 34, 56, 123456, tzinfo=UTC)
    assert parse_created("2024-05-01T14:34:56+02:00") == datetime(2024, 5, 1, 12, 34, 56, tzinfo=UTC)
    for junk in (None, 5, "", "yesterday", "2024-13-01T00:00:00Z", "2024-05-01 12:34:56", "x" * 100):
        assert parse_created(junk) is None
    assert format_time(parse_created("2024-05-01T12:34:56Z")) == ("2024-05-01T12:34:56Z", "2024-05-01 12:34 UTC")
    assert format_time(None) == ("", "—")


@pytest.mark.parametrize("value", ["https://example.org/src", "http://example.org:8080/a?b=c#d"])
def test_plain_web_urls_become_links(value: str) -> None:
    assert external_link(value) == value


@pytest.mark.parametrize("value", [
    "javascript:alert(1)", "JavaScript:alert(1)", " javascript:alert(1)", "data:text/html,<script>", "//evil.org",
    "/relative", "https://", "https://a b", "https://ex.org/\"><script>", "https://user@evil.org",
    "https://ex.org/\nx", "vbscript:x", "ftp://example.org", "https://ex.org/'x", "https://ex.org/\\x"])
def test_everything_else_stays_text(value: str) -> None:
    assert external_link(value) is None


@pytest.mark.parametrize("target", [
    None, "", "//evil.org", "https://evil.org/ui/", "/\\evil.org", "/ui/\\..", "javascript:alert(1)", "/v2/",
    "/uix", "ui/", "/ui/../v2/", "/ui/./x", "/ui/%2e%2e/", "/ui///evil", "/ui/\r\nSet-Cookie:x", "/ui/#x"])
def test_no_open_redirect_after_sign_in(target: str | None) -> None:
    assert safe_next(target, "/ui/") == "/ui/"


@pytest.mark.parametrize("target", ["/ui/", "/ui/r/team/app", "/ui/r/team/app/-/tag/1.0?platform=sha256:ab",
                                    "/ui/?q=a&page=2"])
def test_paths_inside_the_catalog_are_kept(target: str) -> None:
    assert safe_next(target, "/ui/") == target
