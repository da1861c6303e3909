"""MIME structure of a large message without copying its bodies (RFC 2045, RFC 2046).

The stdlib parser turns a message into lines of text and joins them again: a 25 MB message
costs well over 100 MB. For large messages the structure is found here instead, with
`bytes.find` over the raw bytes: each part's headers are parsed on their own (small), and each
body is only a (start, end) range into the raw bytes. Sizes of encoded bodies are counted in
chunks; a body is decoded only when asked for (text bodies, an attachment download).
"""

from __future__ import annotations

import binascii
import itertools
from collections.abc import Iterator
from dataclasses import dataclass

from postroom.domain.inbox import header_end
from postroom.services.headers import Headers, parse_headers

_CHUNK = 1024 * 1024
_MAX_DEPTH = 20  # RFC 2046 sets no limit; deeper nesting is hostile
_B64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_NOT_B64 = bytes(set(range(256)) - set(_B64_ALPHABET))


@dataclass(frozen=True, slots=True)
class Part:
    """A leaf of the MIME tree: its headers and its body as a range of the raw bytes."""

    headers: Headers
    start: int
    end: int


def top_headers(raw: bytes) -> Headers:
    """The message's own header section, parsed (headers only)."""
    head_end, _ = header_end(raw, 0, len(raw))
    return parse_headers(raw[:head_end])


def _delimiters(
    raw: bytes, boundary: bytes, start: int, end: int
) -> Iterator[tuple[int, int, bool]]:
    """(line start, line end, is the close delimiter) of each boundary line in [start, end).

    A delimiter must begin a line (RFC 2046 §5.1.1); the line break before it belongs to it.
    """
    delim = b"--" + boundary
    pos = start
    while (at := raw.find(delim, pos, end)) >= 0:
        pos = at + len(delim)
        if at != start and raw[at - 1 : at] != b"\n":
            continue
        closing = raw.startswith(b"--", pos)
        eol = raw.find(b"\n", pos, end)
        yield at, (end if eol < 0 else eol + 1), closing
        if closing:
            return


def _strip_eol(raw: bytes, start: int, end: int) -> int:
    """`end` moved before the CRLF or LF that precedes a delimiter line."""
    if end > start and raw[end - 1 : end] == b"\n":
        end -= 1
        if end > start and raw[end - 1 : end] == b"\r":
            end -= 1
    return end


def scan(
    raw: bytes,
    start: int = 0,
    end: int | None = None,
    depth: int = 0,
    headers: Headers | None = None,
) -> Iterator[Part]:
    """The leaves of the message in `raw[start:end]`, depth first; an attached message/rfc822
    is one leaf, and a multipart whose boundaries are missing is one (broken) leaf.

    `headers`: this part's header section when the caller has already parsed it (the top
    headers are needed anyway; parsing them twice was a third of the header work)."""
    end = len(raw) if end is None else end
    head_end, body = header_end(raw, start, end)
    if headers is None:
        headers = parse_headers(raw[start:head_end])
    boundary = headers.get_boundary() if headers.get_content_maintype() == "multipart" else None
    if boundary is None or depth >= _MAX_DEPTH:
        yield Part(headers, body, end)
        return
    lines = list(_delimiters(raw, boundary.encode("utf-8", "surrogateescape"), body, end))
    if not lines:
        yield Part(headers, body, end)
        return
    for (_, part_start, closing), (next_at, _, _) in itertools.pairwise(lines):
        if not closing:
            yield from scan(raw, part_start, _strip_eol(raw, part_start, next_at), depth + 1)
    _, last_start, last_closing = lines[-1]
    if not last_closing:  # no close delimiter: the last part runs to the end
        yield from scan(raw, last_start, end, depth + 1)


def _encoding(part: Part) -> str:
    return str(part.headers.get("content-transfer-encoding", "")).strip().lower()


def decoded(raw: bytes, part: Part) -> bytes:
    """The body of `part` with its transfer encoding undone (lenient, like the stdlib)."""
    body = raw[part.start : part.end]
    encoding = _encoding(part)
    try:
        if encoding == "base64":
            symbols = body.translate(None, _NOT_B64)
            symbols = symbols[: len(symbols) - len(symbols) % 4 if len(symbols) % 4 == 1 else None]
            return binascii.a2b_base64(symbols + b"=" * (-len(symbols) % 4))
        if encoding == "quoted-printable":
            return binascii.a2b_qp(body)
    except binascii.Error:
        pass
    return body


def decoded_size(raw: bytes, part: Part) -> int:
    """The size of the decoded body, counted in chunks so that no copy of it is made."""
    encoding = _encoding(part)
    if encoding == "quoted-printable":
        return len(decoded(raw, part))
    if encoding != "base64":
        return part.end - part.start
    symbols = 0
    for at in range(part.start, part.end, _CHUNK):
        chunk = raw[at : min(at + _CHUNK, part.end)]
        symbols += len(chunk.translate(None, _NOT_B64))
    return symbols * 3 // 4  # a trailing partial quad decodes to fewer bytes, as in decoded()
