"""Outgoing messages as the domain sees them: states, drafts, validation and the retry policy.

Pure rules only. A `Draft` is what a caller submits; `validate_draft` refuses bad addresses and
header injection (CR, LF, NUL) naming the field at fault; `RetryPolicy.decide` returns what to do
after a temporary failure; `settle` derives a message's status from its recipients' statuses.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import getaddresses, parseaddr
from enum import StrEnum

from postroom.domain.accounts import SendMode
from postroom.domain.delivery import RecipientResult, Reply, ReplyClass
from postroom.errors import InvalidInput


class MessageStatus(StrEnum):
    """queued → sending → sent | deferred | failed | cancelled; deferred → sending again."""

    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"
    CANCELLED = "cancelled"


CLAIMABLE = (MessageStatus.QUEUED, MessageStatus.DEFERRED)
CANCELLABLE = (MessageStatus.QUEUED, MessageStatus.DEFERRED)
RESENDABLE = (MessageStatus.FAILED, MessageStatus.CANCELLED, MessageStatus.DEFERRED)


class RecipientStatus(StrEnum):
    """Per recipient: pending until the server answers; deferred ones are tried again."""

    PENDING = "pending"
    SENT = "sent"
    DEFERRED = "deferred"
    FAILED = "failed"


class RecipientKind(StrEnum):
    TO = "to"
    CC = "cc"
    BCC = "bcc"


MIN_PRIORITY, MAX_PRIORITY, DEFAULT_PRIORITY = 0, 9, 5
MAX_RECIPIENTS = 1000
# Headers Postroom writes itself from the draft's fields; letting callers set them would allow a
# second From or a forged Message-ID that breaks at-least-once de-duplication downstream.
RESERVED_HEADERS = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "reply-to",
        "subject",
        "date",
        "message-id",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "sender",
        "return-path",
    }
)
_HEADER_NAME = re.compile(r"^[!-9;-~]{1,76}$")  # RFC 5322 §3.6.8 ftext
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"^(?:{_LABEL}\.)*{_LABEL}$")
_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")  # RFC 5321 §4.1.2 dot-string


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Draft:
    """A message as submitted. Addresses may be bare (`a@example.com`) or `Name <a@example.com>`.

    `from_address` empty means the account's from address; `account_id` None means routing picks.
    `priority` 0 is most urgent, 9 least. `mode` None means the account's send mode.
    """

    to: tuple[str, ...] = ()
    cc: tuple[str, ...] = ()
    bcc: tuple[str, ...] = ()
    subject: str = ""
    text: str = ""
    html: str = ""
    from_address: str = ""
    reply_to: str = ""
    attachments: tuple[Attachment, ...] = ()
    headers: tuple[tuple[str, str], ...] = ()
    account_id: int | None = None
    priority: int = DEFAULT_PRIORITY
    send_after: datetime | None = None
    idempotency_key: str | None = None
    mode: SendMode | None = None

    def recipients(self) -> list[tuple[RecipientKind, str]]:
        """(kind, bare address) for every recipient, in order, duplicates removed."""
        seen: set[str] = set()
        out: list[tuple[RecipientKind, str]] = []
        for kind, values in (
            (RecipientKind.TO, self.to),
            (RecipientKind.CC, self.cc),
            (RecipientKind.BCC, self.bcc),
        ):
            for value in values:
                address = ascii_address(parseaddr(value)[1])
                if address.lower() not in seen:
                    seen.add(address.lower())
                    out.append((kind, address))
        return out


def ascii_address(address: str) -> str:
    """The address with an IDNA (punycode) domain, as SMTP without SMTPUTF8 needs it."""
    local, _, domain = address.rpartition("@")
    return f"{local}@{domain.encode('idna').decode('ascii')}"


def injection_problem(value: str) -> str | None:
    """Why `value` cannot go into a header (CR, LF or NUL would start a new header), or None."""
    for char, name in (("\r", "CR"), ("\n", "LF"), ("\x00", "NUL")):
        if char in value:
            return f"must not contain {name} (header injection)"
    return None


def address_problem(value: str) -> str | None:
    """Why `value` is not a usable mailbox (`a@b.example` or `Name <a@b.example>`), or None."""
    if problem := injection_problem(value):
        return problem
    # getaddresses, not parseaddr: parseaddr silently keeps the first of "a@x, b@y" or of
    # "alice@x <bob@y>" (CVE-2023-27043), which would send to an address nobody typed.
    parsed = getaddresses([value.strip()])
    if len(parsed) != 1 or "@" not in parsed[0][1]:
        return f"not one e-mail address: {value!r}"
    address = parsed[0][1]
    local, _, domain = address.rpartition("@")
    if not _LOCAL.match(local) or local.startswith(".") or ".." in local or local.endswith("."):
        return f"invalid local part in {address!r}"
    try:
        ascii_domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        return f"invalid domain in {address!r}"
    if not _DOMAIN.match(ascii_domain) or len(ascii_domain) > 253:
        return f"invalid domain in {address!r}"
    return None


def validate_draft(draft: Draft) -> None:
    """Raise InvalidInput naming every bad field (`to[0]`, `subject`, `headers.X-Tag` …)."""
    problems: dict[str, str] = {}
    for field_name in ("to", "cc", "bcc"):
        for index, value in enumerate(getattr(draft, field_name)):
            if problem := address_problem(value):
                problems[f"{field_name}[{index}]"] = problem
    for field_name in ("from_address", "reply_to"):
        value = getattr(draft, field_name)
        if value and (problem := address_problem(value)):
            problems[field_name] = problem
    if problem := injection_problem(draft.subject):
        problems["subject"] = problem
    for name, value in draft.headers:
        key = f"headers.{name}"
        if not _HEADER_NAME.match(name):
            problems[key] = "header name must be 1-76 printable ASCII characters without ':'"
        elif name.lower() in RESERVED_HEADERS:
            problems[key] = "set by Postroom; use the message field instead"
        elif problem := injection_problem(value):
            problems[key] = problem
    for index, attachment in enumerate(draft.attachments):
        if not attachment.filename or injection_problem(attachment.filename):
            problems[f"attachments[{index}].filename"] = "must be non-empty without CR/LF/NUL"
        if not re.match(r"^[\w.+-]+/[\w.+-]+$", attachment.content_type):
            problems[f"attachments[{index}].content_type"] = "must look like type/subtype"
    count = len(draft.to) + len(draft.cc) + len(draft.bcc)
    if count == 0:
        problems["to"] = "at least one recipient (to, cc or bcc) is required"
    elif count > MAX_RECIPIENTS:
        problems["to"] = f"at most {MAX_RECIPIENTS} recipients per message"
    if not draft.text and not draft.html:
        problems["text"] = "a text or an html body is required"
    if not MIN_PRIORITY <= draft.priority <= MAX_PRIORITY:
        problems["priority"] = f"must be between {MIN_PRIORITY} and {MAX_PRIORITY}"
    if draft.send_after is not None and draft.send_after.tzinfo is None:
        problems["send_after"] = "must include a time zone"
    if draft.idempotency_key is not None and not 1 <= len(draft.idempotency_key) <= 200:
        problems["idempotency_key"] = "must be 1-200 characters"
    if problems:
        raise InvalidInput(fields=problems)


@dataclass(frozen=True, slots=True)
class RetryDecision:
    """After a temporary failure: try again at `send_again_at`, or give up (then it is None)."""

    give_up: bool
    send_again_at: datetime | None
    reason: str


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff by attempt: initial, doubling, capped at max; give up at expiry.

    Postfix does the same (minimal_backoff_time doubling to maximal_backoff_time, bounce after
    maximal_queue_lifetime). A message gets one last try at its expiry instant, then gives up.
    """

    initial_s: int = 300
    max_s: int = 3600
    lifetime_s: int = 5 * 24 * 3600

    def delay_s(self, attempts: int) -> int:
        """The wait after the `attempts`-th failed try (1 → initial, 2 → twice initial …, ≤ max)."""
        exponent = min(max(attempts - 1, 0), 32)
        return int(min(self.initial_s * (2**exponent), self.max_s))

    def expires_at(self, created_at: datetime) -> datetime:
        return created_at + timedelta(seconds=self.lifetime_s)

    def decide(self, attempts: int, now: datetime, expires_at: datetime) -> RetryDecision:
        """What to do after try number `attempts` failed temporarily at `now`."""
        if now >= expires_at:
            return RetryDecision(True, None, f"gave up after {attempts} attempts: lifetime over")
        at = min(now + timedelta(seconds=self.delay_s(attempts)), expires_at)
        return RetryDecision(False, at, f"attempt {attempts} failed temporarily; retry at {at}")

    def auth_hold_until(self, failing_since: datetime, last_failure: datetime) -> datetime:
        """When an account whose login fails may try again: the wait grows with how long it has
        been failing (initial, then about doubling, capped at max), so a locked-out mailbox
        sees one login per interval however much mail is waiting."""
        elapsed = (last_failure - failing_since).total_seconds()
        return last_failure + timedelta(seconds=min(max(elapsed, self.initial_s), self.max_s))


def settle(statuses: list[RecipientStatus]) -> MessageStatus:
    """A message's status once an attempt is over, from its recipients' statuses.

    Any recipient still pending or deferred keeps the message deferred (only those are tried
    again); otherwise it is sent if anyone got it and failed if nobody did. A partial refusal
    therefore leaves the message sent, with the refused recipients visible as failed.
    """
    if any(s in (RecipientStatus.PENDING, RecipientStatus.DEFERRED) for s in statuses):
        return MessageStatus.DEFERRED
    if any(s is RecipientStatus.SENT for s in statuses):
        return MessageStatus.SENT
    return MessageStatus.FAILED


@dataclass(frozen=True, slots=True)
class RecipientView:
    id: int
    address: str
    kind: RecipientKind
    status: RecipientStatus
    code: int | None = None
    enhanced: str = ""
    text: str = ""
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AttemptView:
    id: int
    account_id: int
    worker: str
    started_at: datetime
    outcome: str
    code: int | None = None
    detail: str = ""
    failover_from: int | None = None


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """A stored outgoing message (without its raw bytes; see OutboxRepository.raw)."""

    id: int
    message_id: str
    account_id: int
    status: MessageStatus
    subject: str
    envelope_from: str
    priority: int
    attempts: int
    created_at: datetime
    expires_at: datetime
    next_attempt_at: datetime | None = None
    sent_at: datetime | None = None
    sender_user_id: int | None = None
    idempotency_key: str | None = None
    mode: SendMode = SendMode.QUEUED
    size: int = 0
    last_error: str = ""
    created_by: str = ""
    recipients: tuple[RecipientView, ...] = ()
    attempt_log: tuple[AttemptView, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class PendingRecipient:
    id: int
    address: str


@dataclass(frozen=True, slots=True)
class ClaimedMessage:
    """A message leased to one worker: everything delivery needs, raw bytes included."""

    id: int
    message_id: str
    account_id: int
    envelope_from: str
    raw: bytes
    attempts: int  # including the one now starting
    expires_at: datetime
    sender_user_id: int | None
    recipients: tuple[PendingRecipient, ...]


@dataclass(frozen=True, slots=True)
class RecipientUpdate:
    id: int
    status: RecipientStatus
    code: int | None = None
    enhanced: str = ""
    text: str = ""


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One try, for the attempt log. `account_id` is the account actually used (failover)."""

    account_id: int
    worker: str
    started_at: datetime
    outcome: str  # sent | deferred | failed | unknown | rate_limited
    code: int | None = None
    detail: str = ""
    failover_from: int | None = None
    transcript: list[dict[str, object]] | None = None


@dataclass(frozen=True, slots=True)
class OutboxQuery:
    """Journal filters. `statuses` empty means all; `search` matches subject or a recipient."""

    statuses: tuple[MessageStatus, ...] = ()
    account_id: int | None = None
    search: str = ""
    since: datetime | None = None
    until: datetime | None = None
    offset: int = 0
    limit: int = 50


_BY_CLASS = {
    ReplyClass.SUCCESS: RecipientStatus.SENT,
    ReplyClass.TRANSIENT: RecipientStatus.DEFERRED,
    ReplyClass.PERMANENT: RecipientStatus.FAILED,
}


def recipient_updates(
    pending: Sequence[PendingRecipient],
    results: Sequence[RecipientResult],
    data: Reply | None,
    unknown: bool,
) -> tuple[list[RecipientUpdate], str, int | None]:
    """What one SMTP transaction's answers mean per recipient, a one-line detail, and the
    deciding reply code. A recipient accepted at RCPT whose message then vanished with the
    connection after the final "." (`unknown`) stays deferred: it may have been delivered, and
    the re-send reuses the Message-ID so the receiver can drop the duplicate."""
    by_address = {r.address: r for r in results}
    updates: list[RecipientUpdate] = []
    for recipient in pending:
        result = by_address.get(recipient.address)
        if result is None:
            text, status, code, enhanced = "no answer for this recipient", None, None, ""
        elif unknown and result.reply_class is ReplyClass.SUCCESS:
            text, status, code, enhanced = "connection lost after the final '.'", None, None, ""
        else:
            status, code = _BY_CLASS[result.reply_class], result.code
            text, enhanced = result.text, result.enhanced_status or ""
        updates.append(
            RecipientUpdate(recipient.id, status or RecipientStatus.DEFERRED, code, enhanced, text)
        )
    if unknown:
        return updates, "connection lost after the final '.'; outcome unknown", None
    if data is not None:
        return updates, f"{data.code} {data.text}", data.code
    worst = max(results, key=lambda r: r.code)
    return updates, f"{worst.code} {worst.text} ({worst.stage})", worst.code


@dataclass(frozen=True, slots=True)
class Finished:
    """One attempt's settled outcome, ready to be written: the message's new state, its
    recipients, the attempt-log row and the system-log line (source "Outgoing")."""

    message_id: int
    owner: str
    status: MessageStatus
    recipients: tuple[RecipientUpdate, ...]
    attempt: AttemptRecord
    next_attempt_at: datetime | None
    log_level: str
    log_message: str
    log_transcript: list[dict[str, object]] | None = None
