"""Inbound mail rules: what makes two messages the same, where a fetch resumes, when an account
is switched off. Pure: no I/O, stdlib only.

Dedupe key (per account): the normalised Message-ID when the message has one, else the SHA-256 of
the raw bytes. So the same mail delivered twice to one account is stored once, and delivered to
two accounts once each (the key is unique per account, not globally).

IMAP cursor: one per (account, folder, UIDVALIDITY). UIDs are only meaningful together with the
folder's UIDVALIDITY (RFC 3501 §2.3.1.1), so a new UIDVALIDITY starts a new cursor from UID 0 — a
resync — whose duplicates the dedupe key absorbs. `UID FETCH n:*` returns the highest message even
when nothing is newer (RFC 3501 §6.4.8: "*" is the largest UID in use), hence `is_new_uid`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum


class MessageStatus(StrEnum):
    PARSED = "parsed"
    QUARANTINED = "quarantined"


class StoreOutcome(StrEnum):
    """What happened to one fetched message."""

    STORED = "stored"
    QUARANTINED = "quarantined"
    DUPLICATE = "duplicate"
    SKIPPED = "skipped"  # older than the account's import start


_MSGID_RE = re.compile(r"<([^<>\s]+)>")


def normalise_message_id(value: str | None) -> str | None:
    """The Message-ID in a comparable form, or None when there is none worth trusting.

    Takes the first `<id-left@id-right>` token (RFC 5322 §3.6.4), ignoring comments and folding
    whitespace around it; bare ids without brackets are accepted as they are common in the wild.
    The right part is a domain and compared case-insensitively; the left part keeps its case.
    """
    if not value:
        return None
    text = value.replace("\x00", "").strip()
    match = _MSGID_RE.search(text)
    token = match.group(1) if match else (text.split()[0] if text.split() else "")
    token = token.strip("<>")
    if not token or len(token) > 900:
        return None
    left, at, right = token.rpartition("@")
    return f"{left}@{right.lower()}" if at and left else token


_HEADER_LIMIT = 256 * 1024
_MSGID_HEADER_RE = re.compile(rb"(?im)^message-id[ \t]*:[ \t]*(.*(?:\r?\n[ \t].*)*)")


def header_end(raw: bytes, start: int, end: int) -> tuple[int, int]:
    """(end of the header section, start of the body) of the message or MIME part in
    `raw[start:end]`: the first empty line, CRLF or bare LF (RFC 5322 §2.1); a part that starts
    with one has an empty header section; without one, all of it is header."""
    if raw.startswith(b"\r\n", start) or raw.startswith(b"\n", start):
        return start, start + (2 if raw.startswith(b"\r\n", start) else 1)
    crlf = raw.find(b"\r\n\r\n", start, end)
    # A bare-LF blank line counts only before the first CRLF one: searching no further keeps
    # a CRLF message from being scanned to its end.
    lf = raw.find(b"\n\n", start, end if crlf < 0 else crlf)
    if crlf >= 0 and lf < 0:
        return crlf + 2, crlf + 4
    if lf >= 0:
        return lf + 1, lf + 2
    return end, end


def header_block(raw: bytes) -> bytes:
    """The header section of a raw message without its last line end, at most 256 KiB of it."""
    head = raw[: header_end(raw, 0, min(len(raw), _HEADER_LIMIT))[0]]
    return head[:-2] if head.endswith(b"\r\n") else head[:-1] if head.endswith(b"\n") else head


def raw_message_id(raw: bytes) -> str | None:
    """The Message-ID read straight from the raw header section, without a MIME parser, so the
    dedupe key is the same whether or not the message parses (and after a re-parse)."""
    found = _MSGID_HEADER_RE.search(header_block(raw))
    return normalise_message_id(found.group(1).decode("latin-1")) if found else None


def dedupe_key(message_id: str | None, raw_sha256: str) -> str:
    """The per-account identity of a message: `mid:<normalised id>` or `sha256:<hex>`."""
    normalised = normalise_message_id(message_id)
    return f"mid:{normalised}" if normalised else f"sha256:{raw_sha256}"


@dataclass(frozen=True, slots=True)
class Cursor:
    """How far one (account, folder, UIDVALIDITY) has been imported.

    `start_at` is the import start of the account's mailbox: mail older than it is not imported,
    also after a resync (so a UIDVALIDITY change does not import what the first fetch skipped).
    """

    folder: str
    uidvalidity: int
    last_uid: int
    start_at: datetime | None


class CursorAction(StrEnum):
    CONTINUE = "continue"  # same UIDVALIDITY: fetch UIDs above last_uid
    FIRST = "first"  # never fetched: set the starting point (fetch_since or "from now on")
    RESYNC = "resync"  # UIDVALIDITY changed: fetch everything again, dedupe absorbs copies


@dataclass(frozen=True, slots=True)
class CursorPlan:
    action: CursorAction
    cursor: Cursor | None  # the cursor to continue (CONTINUE) or the one being replaced (RESYNC)


def plan_folder(cursors: list[Cursor], uidvalidity: int) -> CursorPlan:
    """Decide how to fetch a folder from its stored cursors and the server's UIDVALIDITY."""
    for cursor in cursors:
        if cursor.uidvalidity == uidvalidity:
            return CursorPlan(CursorAction.CONTINUE, cursor)
    if cursors:
        return CursorPlan(CursorAction.RESYNC, cursors[0])
    return CursorPlan(CursorAction.FIRST, None)


def is_new_uid(uid: int, last_uid: int) -> bool:
    """True for UIDs above the cursor; `UID FETCH n:*` can return one at or below it."""
    return uid > last_uid


def before_start(internaldate: datetime | None, start_at: datetime | None) -> bool:
    """True when a message predates the import start and must be skipped."""
    return start_at is not None and internaldate is not None and internaldate < start_at


def since_search_date(start_at: datetime) -> datetime:
    """The date to pass to IMAP SEARCH SINCE for an import start.

    SEARCH SINCE compares dates only, in the server's idea of each message's time zone
    (RFC 3501 §6.4.4), so search one day earlier and filter on INTERNALDATE afterwards.
    """
    return start_at - timedelta(days=1)


# Health --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Health:
    """The fetch health of one account's incoming part."""

    consecutive_failures: int = 0
    consecutive_auth_failures: int = 0
    failing_since: datetime | None = None

    def after_success(self) -> Health:
        return Health()

    def after_failure(self, now: datetime, *, auth: bool) -> Health:
        """One more failure; an authentication failure also counts towards the lockout rule,
        any other failure breaks the run of authentication failures."""
        return replace(
            self,
            consecutive_failures=self.consecutive_failures + 1,
            consecutive_auth_failures=self.consecutive_auth_failures + 1 if auth else 0,
            failing_since=self.failing_since or now,
        )


def disable_reason(
    health: Health, now: datetime, *, max_auth_failures: int, max_failing_hours: float
) -> str | None:
    """Why the incoming part must be switched off now, or None to keep fetching.

    Repeated authentication failures risk a lockout on the provider; a long failure streak means
    nobody is reading the mail anyway. A limit of 0 disables that rule.
    """
    if max_auth_failures > 0 and health.consecutive_auth_failures >= max_auth_failures:
        return f"{health.consecutive_auth_failures} consecutive authentication failures"
    if (
        max_failing_hours > 0
        and health.failing_since is not None
        and now - health.failing_since >= timedelta(hours=max_failing_hours)
    ):
        hours = (now - health.failing_since).total_seconds() / 3600
        return f"failing for {hours:.1f} hours"
    return None


# Parsed view ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Address:
    name: str
    email: str


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """One attachment as listed; `index` is its position in the MIME walk (for download)."""

    index: int
    filename: str
    content_type: str
    size: int
    content_id: str = ""
    inline: bool = False


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    """The parsed view of a raw message. HTML is already sanitised."""

    from_: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    reply_to: tuple[Address, ...]
    subject: str
    date: datetime | None
    message_id: str | None
    in_reply_to: str
    references: tuple[str, ...]
    text_body: str
    html_body: str
    attachments: tuple[AttachmentInfo, ...]


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a fetched message came from on the server."""

    folder: str = ""
    uid: int | None = None
    uidvalidity: int | None = None
    uidl: str | None = None
    flags: tuple[str, ...] = ()
    internaldate: datetime | None = None


@dataclass(frozen=True, slots=True)
class InboxMessage:
    """A stored incoming message (list view and detail; bodies empty in list results)."""

    id: int
    account_id: int
    status: MessageStatus
    quarantine_reason: str
    dedupe_key: str
    raw_sha256: str
    size: int
    origin: Origin
    fetched_at: datetime
    from_: Address | None
    to: tuple[Address, ...]
    cc: tuple[Address, ...]
    subject: str
    date: datetime | None
    message_id: str | None
    in_reply_to: str
    references: tuple[str, ...]
    has_attachments: bool
    text_body: str = ""
    html_body: str = ""
    attachments: tuple[AttachmentInfo, ...] = ()


class SortField(StrEnum):
    DATE = "date"
    FETCHED = "fetched"
    SUBJECT = "subject"
    SENDER = "sender"
    SIZE = "size"


@dataclass(frozen=True, slots=True)
class InboxQuery:
    """Search and paging for one account's messages (all filters optional, combined with AND)."""

    sender: str = ""
    subject: str = ""
    since: datetime | None = None
    until: datetime | None = None
    has_attachments: bool | None = None
    status: MessageStatus | None = MessageStatus.PARSED
    sort: SortField = SortField.DATE
    descending: bool = True
    limit: int = 50
    offset: int = 0


@dataclass(frozen=True, slots=True)
class FetchReport:
    """The outcome of one fetch run of one account."""

    account_id: int
    protocol: str
    ok: bool
    stored: int = 0
    quarantined: int = 0
    duplicates: int = 0
    skipped: int = 0
    error: str = ""
    auth_failure: bool = False
    disabled_reason: str = ""
    folders: tuple[str, ...] = ()

    @property
    def fetched(self) -> int:
        """Messages newly kept (parsed or quarantined) in this run."""
        return self.stored + self.quarantined
