"""proxy.http.backend.wire, pure: the request head we write, the response head we parse, the chunked decoder.

Strictness is the point (the connection under these bytes is reused for
the next client's request): anything a registry would not send must be a
WireError, never a guess, and no header we write may split into two.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.http.backend.wire import MAX_CHUNK_LINE, Chunked, WireError, parse_head, request_head


def head(*lines: str, method: str = "GET") -> object:
    return parse_head("\r\n".join(lines).encode("latin-1"), method)


# -- status line -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("line", "status", "reason", "keep_alive"), [
    ("HTTP/1.1 200 OK", 200, "OK", True),
    ("HTTP/1.1 404 Not Found", 404, "Not Found", True),
    ("HTTP/1.1 200", 200, "", True),  # no reason, no space
    ("HTTP/1.1 200 ", 200, "", True),  # no reason after the space
    ("HTTP/1.0 200 OK", 200, "OK", False),  # 1.0: one answer per connection
])
def test_status_line_variants(line: str, status: int, reason: str, keep_alive: bool) -> None:
    parsed = parse_head(f"{line}\r\nContent-Length: 0".encode(), "GET")
    assert (parsed.status, parsed.reason, parsed.keep_alive) == (status, reason, keep_alive)


@pytest.mark.parametrize("line", [
    "HTTP/2 200 OK", "HTTP/1.2 200 OK", "http/1.1 200 OK", "ICY 200 OK", "HTTP/1.1 20 OK", "HTTP/1.1 2000 OK",
    "HTTP/1.1 20x OK", "HTTP/1.1  200 OK", "HTTP/1.1 099 Low", "HTTP/1.1 ٢٠٠ OK", "", "HTTP/1.1",
])
def test_bad_status_lines_are_refused(line: str) -> None:
    with pytest.raises(WireError):
        parse_head(line.encode("utf-8"), "GET")


@pytest.mark.parametrize("line", ["HTTP/1.1 200 OK\nX-Injected: 1", "HTTP/1.1 200 O\rK", "HTTP/1.1 200 O\x00K"])
def test_a_reason_holding_cr_lf_or_nul_is_refused(line: str) -> None:
    """The reason is passed on to the client: aiohttp refuses a LF in it (a 500, not a 502), and a bare
    LF ends the line for a lenient reader (RFC 9112 2.2), hiding the header after it from us."""
    with pytest.raises(WireError):
        parse_head(f"{line}\r\nContent-Length: 0".encode(), "GET")


# -- header lines ----------------------------------------------------------------------------------------
def test_repeated_headers_are_kept_in_order_and_values_trimmed() -> None:
    parsed = parse_head(b"HTTP/1.1 200 OK\r\nLink: <a>\r\nX-One:   1 \t\r\nlink: <b>\r\nLINK:<c>\r\n"
                        b"Content-Length: 0", "GET")
    assert parsed.headers.getall("Link") == ["<a>", "<b>", "<c>"]
    assert parsed.headers["x-one"] == "1"


@pytest.mark.parametrize("line", [
    " folded continuation", "\tfolded continuation", "no colon here", ": no name", "Bad Name: x",
    "Bad(name): x", "Name : space before colon", "Naïve: x", "Bad\x00Name: x",
])
def test_malformed_header_lines_are_refused(line: str) -> None:
    with pytest.raises(WireError):
        parse_head(f"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n{line}".encode(), "GET")


@pytest.mark.parametrize("value", ["a\nX-Injected: 1", "a\rb", "a\x00b"])
def test_a_header_value_holding_cr_lf_or_nul_is_refused(value: str) -> None:
    """RFC 9110 5.5: a value with CR, LF or NUL must be rejected (or those replaced by SP).

    Passed on, aiohttp's response writer refuses it (a 500 instead of a
    502), or a lenient client downstream reads ``X-Injected`` as a header.
    """
    with pytest.raises(WireError):
        parse_head(f"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: {value}".encode(), "GET")


def test_header_values_keep_non_ascii_bytes() -> None:
    parsed = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nX-A: caf\xc3\xa9 \xff", "GET")
    assert parsed.headers["X-A"].encode("utf-8", "surrogateescape") == b"caf\xc3\xa9 \xff"


# -- framing ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("values", "length"), [
    (["5"], 5), (["5", "5"], 5), (["5, 5"], 5), (["0"], 0), (["00012"], 12), (["  7 "], 7),
])
def test_content_length_accepted(values: list[str], length: int) -> None:
    parsed = head("HTTP/1.1 200 OK", *(f"Content-Length: {v}" for v in values))
    assert (parsed.content_length, parsed.body, parsed.chunked, parsed.keep_alive) == (length, length, False, True)


@pytest.mark.parametrize("values", [
    ["5", "6"], ["5, 6"], ["5", "05"], ["+5"], ["-5"], ["0x5"], ["5.0"], ["five"], [""], ["5,"], ["1 2"],
    ["٣"], ["²"], ["5", "٥"],
])
def test_content_length_not_one_ascii_number_is_refused(values: list[str]) -> None:
    with pytest.raises(WireError):
        parse_head("\r\n".join(["HTTP/1.1 200 OK", *(f"Content-Length: {v}" for v in values)]).encode(), "GET")


@pytest.mark.parametrize("coding", ["chunked", "Chunked", " chunked "])
def test_chunked_is_framed_by_its_chunks(coding: str) -> None:
    parsed = head("HTTP/1.1 200 OK", f"Transfer-Encoding: {coding}")
    assert (parsed.chunked, parsed.body, parsed.content_length, parsed.keep_alive) == (True, None, None, True)


@pytest.mark.parametrize("lines", [
    ["Transfer-Encoding: gzip, chunked"], ["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"],
    ["Transfer-Encoding: chunked, chunked"], ["Transfer-Encoding: identity"], ["Transfer-Encoding: "],
    ["Transfer-Encoding: chunked", "Content-Length: 5"], ["Content-Length: 5", "Transfer-Encoding: chunked"],
])
def test_ambiguous_or_unknown_transfer_codings_are_refused(lines: list[str]) -> None:
    with pytest.raises(WireError):
        parse_head("\r\n".join(["HTTP/1.1 200 OK", *lines]).encode(), "GET")


@pytest.mark.parametrize(("status", "method"), [(200, "HEAD"), (404, "HEAD"), (204, "GET"), (304, "GET"),
                                                 (100, "GET"), (103, "GET")])
def test_answers_without_a_body_have_none_even_with_a_length(status: int, method: str) -> None:
    parsed = head(f"HTTP/1.1 {status} X", "Content-Length: 1234", method=method)
    assert (parsed.body, parsed.content_length, parsed.keep_alive) == (0, 1234, True)


def test_no_framing_means_until_close_and_no_reuse() -> None:
    parsed = head("HTTP/1.1 200 OK", "Connection: keep-alive")
    assert (parsed.body, parsed.chunked, parsed.keep_alive) == (None, False, False)
    assert head("HTTP/1.1 200 OK", method="HEAD").keep_alive  # a HEAD answer needs no framing


@pytest.mark.parametrize("lines", [
    ["HTTP/1.1 200 OK", "Connection: close"], ["HTTP/1.1 200 OK", "Connection: Keep-Alive, CLOSE"],
    ["HTTP/1.1 200 OK", "Connection: x", "Connection: close"], ["HTTP/1.0 200 OK", "Connection: keep-alive"],
])
def test_connection_close_and_http10_end_reuse(lines: list[str]) -> None:
    assert not head(*lines, "Content-Length: 0").keep_alive


# -- request_head ----------------------------------------------------------------------------------------
def test_request_head_is_exactly_what_was_given() -> None:
    wire = request_head("GET", "/v2/a/manifests/b?x=1", [("Host", "h"), ("Accept", "a"), ("Accept", "b")])
    assert wire == b"GET /v2/a/manifests/b?x=1 HTTP/1.1\r\nHost: h\r\nAccept: a\r\nAccept: b\r\n\r\n"
    assert request_head("HEAD", "/", []) == b"HEAD / HTTP/1.1\r\n\r\n"


@pytest.mark.parametrize(("target", "name", "value"), [
    ("/", "X-A", "a\r\nX-Injected: 1"), ("/", "X-A", "a\nb"), ("/", "X-A", "a\rb"), ("/", "X-A", "a\x00b"),
    ("/", "X-A\r\nX-Injected", "1"), ("/", "X\nA", "1"), ("/", "X\x00A", "1"), ("/ HTTP/1.1\r\nX-I: 1\r\n", "A", "b"),
    ("/\n", "A", "b"), ("/\r", "A", "b"), ("/\x00", "A", "b"), ("/", "A", "\r\n"),
])
def test_request_head_refuses_line_breaks_and_nul(target: str, name: str, value: str) -> None:
    with pytest.raises(ValueError):
        request_head("GET", target, [("Host", "h"), (name, value)])


_SAFE = st.binary(max_size=40).filter(lambda b: not set(b) & {0, 10, 13})


@given(raw=_SAFE)
@settings(max_examples=200, deadline=None)
def test_request_head_round_trips_bytes_aiohttp_decoded(raw: bytes) -> None:
    """aiohttp decodes header bytes with surrogateescape; they must reach the backend as they arrived."""
    value = raw.decode("utf-8", "surrogateescape")
    assert request_head("GET", "/", [("X-A", value)]) == b"GET / HTTP/1.1\r\nX-A: " + raw + b"\r\n\r\n"


def test_request_head_refuses_a_string_it_cannot_encode_with_a_value_error() -> None:
    """forward() turns ValueError into a 400; anything else would be a 500."""
    with pytest.raises(ValueError):
        request_head("GET", "/", [("X-A", "\ud800")])


# -- Chunked ------------------------------------------------------------------------------------------
_EXT = st.sampled_from([b"", b";a=b", b" ;a=b", b';name="q;d"', b";x"])
_TRAILER = st.lists(st.sampled_from([b"X-T: 1", b"Digest: sha-256=x", b"X-Empty:"]), max_size=3)


@st.composite
def chunked_streams(draw: st.DrawFn) -> tuple[bytes, bytes, bytes, list[int]]:
    """(payload, encoded stream, bytes after the terminator, the cut points of a random split)."""
    pieces = draw(st.lists(st.binary(min_size=1, max_size=300), max_size=8))
    parts = []
    for piece in pieces:
        size = f"{len(piece):x}".encode()
        size = draw(st.sampled_from([size, size.upper(), b"00" + size]))
        parts.append(size + draw(_EXT) + b"\r\n" + piece + b"\r\n")
    parts.append(b"0" + draw(_EXT) + b"\r\n" + b"".join(t + b"\r\n" for t in draw(_TRAILER)) + b"\r\n")
    after = draw(st.binary(max_size=20))
    stream = b"".join(parts) + after
    if draw(st.booleans()):
        cuts = list(range(1, len(stream)))  # one byte per feed
    else:
        cuts = sorted(set(draw(st.lists(st.integers(1, max(len(stream) - 1, 1)), max_size=12))))
    return b"".join(pieces), stream, after, cuts


@given(chunked_streams())
@settings(max_examples=300, deadline=None)
def test_chunked_decodes_any_split_of_any_stream(case: tuple[bytes, bytes, bytes, list[int]]) -> None:
    payload, stream, after, cuts = case
    feeds = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    decoder = Chunked()
    out = []
    fed = 0
    for feed in feeds:
        out.extend(decoder.feed(feed))
        fed += len(feed)
        if decoder.done:
            break  # the caller stops here: what is left of the stream is never fed
    assert decoder.done
    assert b"".join(out) == payload
    assert all(out)  # never an empty piece
    assert decoder.extra + stream[fed:] == after


@pytest.mark.parametrize("stream", [
    b"zz\r\n", b"0x5\r\nhello\r\n", b"-1\r\n", b"\r\n", b"1 2\r\nab\r\n", b"10000000000000000\r\n",
    b"3\r\nabcd\r\n0\r\n\r\n", b"3\r\nabc0\r\n\r\n", b"3\r\nabc\r\n;x\r\n",
])
def test_malformed_chunked_streams_are_refused(stream: bytes) -> None:
    for pieces in ([stream], [stream[i:i + 1] for i in range(len(stream))]):
        decoder = Chunked()
        with pytest.raises(WireError):
            for piece in pieces:
                decoder.feed(piece)


@pytest.mark.parametrize("split", [False, True], ids=["one-feed", "byte-by-byte"])
def test_a_chunk_size_line_over_the_limit_is_refused_however_it_arrives(split: bool) -> None:
    stream = b"1;" + b"e" * (MAX_CHUNK_LINE + 100) + b"\r\nx\r\n0\r\n\r\n"
    decoder = Chunked()
    with pytest.raises(WireError):
        for piece in ([stream[i:i + 1] for i in range(len(stream))] if split else [stream]):
            decoder.feed(piece)
