"""Defensive parsing of raw messages into the parsed view (domain.inbox.ParsedMessage).

Real-world mail breaks parsers: `email.message_from_bytes(policy=default)` and its header objects
raise on some malformed headers, charsets can be unknown, bodies can hold NULs (which PostgreSQL
text refuses) and 8-bit bytes can sit in headers. Every header is therefore read through the
policy first and, when that raises, from the raw header text; every string is cleaned. What still
cannot be read raises `Unparseable`, and the caller quarantines the message with that reason —
the raw bytes are stored before any of this runs.

Attachments are the non-body leaves of the MIME tree, numbered in a depth-first walk in which an
attached message (message/rfc822) is one leaf; `extract_part` finds a leaf again by that number.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
from collections.abc import Iterator
from datetime import UTC, datetime
from email.message import EmailMessage, Message

import nh3

from postroom.domain.inbox import Address, AttachmentInfo, ParsedMessage, normalise_message_id

_BODY_TYPES = ("text/plain", "text/html")
_MAX_TEXT = 2 * 1024 * 1024  # characters kept of a text or HTML body


class Unparseable(Exception):
    """The message could not be parsed; str(exc) is the quarantine reason."""


def clean(value: object) -> str:
    """A string safe to store and show: no NULs, no lone surrogates.

    Surrogate escapes come from 8-bit bytes in headers; those are most often raw UTF-8 (RFC 6532),
    so they are decoded as UTF-8 and whatever is not valid UTF-8 becomes U+FFFD.
    """
    text = str(value)
    try:
        data = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        data = text.encode("utf-8", "replace")
    return data.decode("utf-8", "replace").replace("\x00", "")


def parse_message(raw: bytes) -> ParsedMessage:
    """The parsed view of `raw`. Raises Unparseable with a reason; never anything else."""
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        if not msg.keys():
            raise Unparseable("no header section: the data does not look like an e-mail message")
        return _view(msg)
    except Unparseable:
        raise
    except Exception as exc:  # the stdlib parser has no single error type; any failure quarantines
        raise Unparseable(f"parse error: {type(exc).__name__}: {clean(exc)[:500]}") from exc


def extract_part(raw: bytes, index: int) -> tuple[str, str, bytes]:
    """(filename, content type, decoded bytes) of leaf `index` of the walk; LookupError if none."""
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    for i, part in enumerate(_leaves(msg)):
        if i == index:
            return _filename(part), part.get_content_type(), _payload_bytes(part)
    raise LookupError(index)


def sanitize_html(html: str) -> str:
    """HTML safe to show inside the UI's sandboxed frame (scripts, handlers, forms removed)."""
    return nh3.clean(html)


# internals -------------------------------------------------------------------------------------


def _view(msg: EmailMessage) -> ParsedMessage:
    text_part = _body_part(msg, "plain")
    html_part = _body_part(msg, "html")
    attachments = []
    for index, part in enumerate(_leaves(msg)):
        if part is text_part or part is html_part:
            continue
        if part.get_content_type() in _BODY_TYPES and not _is_attachment(part):
            continue  # an alternative body that lost the preference contest, not an attachment
        attachments.append(
            AttachmentInfo(
                index=index,
                filename=_filename(part),
                content_type=clean(part.get_content_type())[:255],
                size=len(_payload_bytes(part)),
                content_id=clean(part.get("content-id", "") or "").strip("<> ")[:500],
                inline=part.get_content_disposition() == "inline",
            )
        )
    if text_part is None and html_part is None and msg.is_multipart():
        broken = next((p for p in _leaves(msg) if p.is_multipart()), None)
        text_part = broken  # a multipart without boundaries: show its body as text
    html = _text(html_part)
    return ParsedMessage(
        from_=next(iter(_addresses(msg, "from")), None),
        to=_addresses(msg, "to"),
        cc=_addresses(msg, "cc"),
        reply_to=_addresses(msg, "reply-to"),
        subject=_header(msg, "subject"),
        date=_date(msg),
        message_id=normalise_message_id(_header(msg, "message-id")),
        in_reply_to=normalise_message_id(_header(msg, "in-reply-to")) or "",
        references=tuple(
            ref
            for ref in (normalise_message_id(t) for t in _header(msg, "references").split())
            if ref
        ),
        text_body=_text(text_part),
        html_body=sanitize_html(html) if html else "",
        attachments=tuple(attachments),
    )


def _leaves(part: Message) -> Iterator[Message]:
    """Depth-first leaves; an attached message/rfc822 counts as one leaf."""
    if part.is_multipart() and part.get_content_type() != "message/rfc822":
        payload = part.get_payload()
        if isinstance(payload, list):
            for child in payload:
                if isinstance(child, Message):
                    yield from _leaves(child)
        else:
            yield part  # broken MIME: a multipart without its boundaries
    else:
        yield part


def _body_part(msg: EmailMessage, subtype: str) -> Message | None:
    try:
        return msg.get_body(preferencelist=(subtype,))
    except Exception:  # malformed structure: fall back to the first matching leaf
        ctype = f"text/{subtype}"
        return next((p for p in _leaves(msg) if p.get_content_type() == ctype), None)


def _is_attachment(part: Message) -> bool:
    return part.get_content_disposition() == "attachment"


def _payload_bytes(part: Message) -> bytes:
    if part.get_content_type() == "message/rfc822":
        inner = part.get_payload()
        inner_msg = inner[0] if isinstance(inner, list) and inner else None
        if isinstance(inner_msg, Message):
            return inner_msg.as_bytes(policy=email.policy.compat32)
        return b""
    if part.is_multipart():  # broken MIME: the undivided body, as it stands
        body = part.get_payload()
        return body.encode("utf-8", "surrogateescape") if isinstance(body, str) else b""
    data = part.get_payload(decode=True)
    return data if isinstance(data, bytes) else b""


def _text(part: Message | None) -> str:
    if part is None:
        return ""
    data = _payload_bytes(part)
    charset = part.get_content_charset() or "us-ascii"
    try:
        text = data.decode(charset, "replace")
    except LookupError:  # unknown charset name: UTF-8 is the best guess today
        text = data.decode("utf-8", "replace")
    return clean(text[:_MAX_TEXT])


def _filename(part: Message) -> str:
    try:
        name = part.get_filename() or ""
    except Exception:
        name = ""
    return clean(name).replace("/", "_").replace("\\", "_")[:500]


def _raw_header(msg: Message, name: str) -> str:
    for key, value in msg.raw_items():
        if key.lower() == name:
            return clean(value)
    return ""


def _header(msg: Message, name: str) -> str:
    try:
        value = msg.get(name)
        return " ".join(clean(value).split()) if value is not None else ""
    except Exception:
        return " ".join(_raw_header(msg, name).split())


def _addresses(msg: Message, name: str) -> tuple[Address, ...]:
    try:
        header = msg.get(name)
        if header is None:
            return ()
        found = [(a.display_name, a.addr_spec) for a in getattr(header, "addresses", ())]
    except Exception:
        found = email.utils.getaddresses([_raw_header(msg, name)])
    return tuple(
        Address(clean(n)[:500], clean(e)[:500]) for n, e in found if (n or e) and e != "<>"
    )


def _date(msg: Message) -> datetime | None:
    try:
        header = msg.get("date")
        value = getattr(header, "datetime", None)
    except Exception:
        try:
            value = email.utils.parsedate_to_datetime(_raw_header(msg, "date"))
        except Exception:
            value = None
    if not isinstance(value, datetime):
        return None
    # RFC 5322 §3.3: "-0000" means the zone is unknown; read it as UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
