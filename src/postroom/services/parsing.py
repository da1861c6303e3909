"""Defensive parsing of raw messages into the parsed view (domain.inbox.ParsedMessage).

Real-world mail breaks parsers: `email.message_from_bytes(policy=default)` and its header objects
raise on some malformed headers, charsets can be unknown, bodies can hold NULs (which PostgreSQL
text refuses) and 8-bit bytes can sit in headers. So the MIME structure is found by the range
scanner (services/mimescan.py: header sections read as `compat32` reads them by
services/headers.py, bodies left as byte ranges and decoded only for the text and HTML bodies —
several times faster than the stdlib parser, and it never copies a large body) and every header is decoded here from its raw text: addresses split before RFC 2047 words are decoded (so an
encoded comma cannot split a name), unknown charsets fall back to UTF-8, every string is cleaned.
What still cannot be read raises `Unparseable`; the caller quarantines the message with that
reason — the raw bytes are stored before any of this runs.

Attachments are the non-body leaves of the MIME tree, numbered in a depth-first walk in which an
attached message (message/rfc822) is one leaf; `extract_part` finds a leaf again by that number.
"""

from __future__ import annotations

import contextlib
import email.header
import email.utils
import functools
import re
from datetime import UTC, datetime, timedelta

import nh3

from postroom.domain.inbox import Address, AttachmentInfo, ParsedMessage, normalise_message_id
from postroom.services import mimescan
from postroom.services.headers import Headers

_MAX_TEXT = 2 * 1024 * 1024  # characters kept of a text or HTML body


class Unparseable(Exception):
    """The message could not be parsed; str(exc) is the quarantine reason."""


def clean(value: object) -> str:
    """A string safe to store and show: no NULs, no lone surrogates.

    Surrogate escapes come from 8-bit bytes in headers; those are most often raw UTF-8 (RFC 6532),
    so they are decoded as UTF-8 and whatever is not valid UTF-8 becomes U+FFFD.
    """
    text = str(value)
    if text.isascii() and "\x00" not in text:  # most values: nothing to clean
        return text
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "replace")
    return data.decode("utf-8", "replace").replace("\x00", "")


def decode_words(value: str) -> str:
    """A header value with RFC 2047 encoded words decoded, cleaned and unfolded."""
    text = clean(value)
    if "=?" in text:
        # An unknown charset or broken base64 leaves the words as they stand.
        with contextlib.suppress(Exception):
            text = clean(str(email.header.make_header(email.header.decode_header(text))))
    return " ".join(text.split())


def parse_message(raw: bytes) -> ParsedMessage:
    """The parsed view of `raw`. Raises Unparseable with a reason; never anything else."""
    try:
        top, leaves = _structure(raw)
        if not top.keys():
            raise Unparseable("no header section: the data does not look like an e-mail message")
        return _view(raw, top, leaves)
    except Unparseable:
        raise
    except Exception as exc:  # the email package has no single error type; any failure quarantines
        raise Unparseable(f"parse error: {type(exc).__name__}: {clean(exc)[:500]}") from exc


def extract_part(raw: bytes, index: int) -> tuple[str, str, bytes]:
    """(filename, content type, decoded bytes) of leaf `index` of the walk; LookupError if none."""
    _top, leaves = _structure(raw)
    if not 0 <= index < len(leaves):
        raise LookupError(index)
    part = leaves[index]
    return _filename(part.headers), part.headers.get_content_type(), mimescan.decoded(raw, part)


def sanitize_html(html: str) -> str:
    """HTML safe to show inside the UI's sandboxed frame (scripts, handlers, forms removed)."""
    return nh3.clean(html)


# internals -------------------------------------------------------------------------------------


def _structure(raw: bytes) -> tuple[Headers, list[mimescan.Part]]:
    top = mimescan.top_headers(raw)
    return top, list(mimescan.scan(raw, headers=top))


def _view(raw: bytes, headers: Headers, leaves: list[mimescan.Part]) -> ParsedMessage:
    """The parsed view; of a repeated header the first occurrence counts (Headers.get)."""
    text_part: mimescan.Part | None = None
    html_part: mimescan.Part | None = None
    attachments = []
    for index, leaf in enumerate(leaves):
        part = leaf.headers
        ctype = part.get_content_type()
        disposition = part.get_content_disposition()
        attached = disposition == "attachment"
        if ctype == "text/plain" and not attached and text_part is None:
            text_part = leaf
        elif ctype == "text/html" and not attached and html_part is None:
            html_part = leaf
        elif ctype.startswith("multipart/"):  # broken MIME: no boundaries found
            text_part = text_part or leaf
        elif attached or ctype not in ("text/plain", "text/html"):
            attachments.append(
                AttachmentInfo(
                    index=index,
                    filename=_filename(part),
                    content_type=clean(ctype)[:255],
                    size=mimescan.decoded_size(raw, leaf),
                    content_id=clean(part.get("content-id", "") or "").strip("<> ")[:500],
                    inline=disposition == "inline",
                )
            )
    html = _text(raw, html_part)
    return ParsedMessage(
        from_=next(iter(_addresses(headers.get("from", ""))), None),
        to=_addresses(headers.get("to", "")),
        cc=_addresses(headers.get("cc", "")),
        reply_to=_addresses(headers.get("reply-to", "")),
        subject=decode_words(headers.get("subject", "")),
        date=_date(headers.get("date", "")),
        message_id=normalise_message_id(clean(headers.get("message-id", ""))),
        in_reply_to=normalise_message_id(clean(headers.get("in-reply-to", ""))) or "",
        references=_references(headers.get("references", "")),
        text_body=_text(raw, text_part),
        html_body=sanitize_html(html) if html else "",
        attachments=tuple(attachments),
    )


def _references(value: str) -> tuple[str, ...]:
    if not value:
        return ()
    found = (normalise_message_id(token) for token in clean(value).split())
    return tuple(ref for ref in found if ref)


def _text(raw: bytes, leaf: mimescan.Part | None) -> str:
    if leaf is None:
        return ""
    data = mimescan.decoded(raw, leaf)
    charset = leaf.headers.get_content_charset() or "us-ascii"
    try:
        text = data.decode(charset, "replace")
    except LookupError:  # unknown charset name: UTF-8 is the best guess today
        text = data.decode("utf-8", "replace")
    return clean(text[:_MAX_TEXT])


def _filename(part: Headers) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    return decode_words(name).replace("/", "_").replace("\\", "_")[:500]


@functools.lru_cache(maxsize=4096)
def _addresses(value: str) -> tuple[Address, ...]:
    """The addresses of a header value. Cached: a mailbox sees the same To and From values over
    and over, and getaddresses is the dearest step of a parse (the result is immutable)."""
    if not value:
        return ()
    try:
        found = email.utils.getaddresses([clean(value)])
    except Exception:
        return ()
    return tuple(
        Address(decode_words(name)[:500], clean(addr).strip()[:500])
        for name, addr in found
        if addr and addr != "<>"
    )


_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
# RFC 5322 §3.3 as nearly every sender writes it: "Tue, 01 Dec 2026 10:00:00 +0000".
_DATE = re.compile(
    r"(?:[A-Z][a-z]{2}, )?(\d{1,2}) ([A-Z][a-z]{2}) ([12]\d{3}) (\d\d):(\d\d)(?::(\d\d))? ([+-])(\d\d)(\d\d)"
)


def _date(value: str) -> datetime | None:
    """The Date header in UTC, or None when it cannot be read. The canonical form is read
    directly; anything else (and any impossible date) by email.utils, the reference."""
    if not value:
        return None
    match = _DATE.fullmatch(value.strip())
    month = _MONTHS.get(match[2]) if match else None
    if match is not None and month is not None:
        offset = timedelta(hours=int(match[8]), minutes=int(match[9]))
        with contextlib.suppress(ValueError):
            local = datetime(int(match[3]), month, int(match[1]), int(match[4]), int(match[5]),
                             int(match[6] or 0), tzinfo=UTC)  # fmt: skip
            return local - offset if match[7] == "+" else local + offset
    try:
        parsed = email.utils.parsedate_to_datetime(clean(value))
        # RFC 5322 §3.3: "-0000" means the zone is unknown; read it as UTC.
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except Exception:  # unreadable, or out of range once in UTC (31 Dec 9999 23:00 -0100)
        return None
