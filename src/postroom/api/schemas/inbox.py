"""Schemas of the inbox: fetched messages, attachments, fetch reports, notifications."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from postroom.api.schemas.common import PagePublic, Public
from postroom.domain.inbox import Address, FetchReport, InboxMessage
from postroom.storage.audit import Notification


class AddressPublic(Public):
    name: str
    email: str

    @classmethod
    def of(cls, address: Address) -> AddressPublic:
        return cls(name=address.name, email=address.email)


class AttachmentPublic(Public):
    """`index` is what the download URL takes."""

    index: int
    filename: str
    content_type: str
    size: int
    content_id: str
    inline: bool


class InboxMessagePublic(Public):
    """A list line: who, what, when, where from; no bodies."""

    id: int
    account_id: int
    status: str
    quarantine_reason: str
    subject: str
    from_: AddressPublic | None
    to: list[AddressPublic]
    cc: list[AddressPublic]
    date: datetime | None
    fetched_at: datetime
    message_id: str | None
    in_reply_to: str
    references: list[str]
    size: int
    folder: str
    uid: int | None
    uidl: str | None
    flags: list[str]
    has_attachments: bool

    @classmethod
    def of(cls, m: InboxMessage) -> InboxMessagePublic:
        return cls.model_validate(_fields(cls, m))


class InboxMessageDetail(InboxMessagePublic):
    """One message: text body, sanitised HTML body (show it in a sandboxed frame), attachments."""

    text_body: str
    html_body: str
    attachments: list[AttachmentPublic]

    @classmethod
    def of(cls, m: InboxMessage) -> InboxMessageDetail:
        return cls.model_validate(_fields(cls, m))


def _fields(cls: type[InboxMessagePublic], m: InboxMessage) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": m.id,
        "account_id": m.account_id,
        "status": m.status.value,
        "quarantine_reason": m.quarantine_reason,
        "subject": m.subject,
        "from_": AddressPublic.of(m.from_) if m.from_ else None,
        "to": [AddressPublic.of(a) for a in m.to],
        "cc": [AddressPublic.of(a) for a in m.cc],
        "date": m.date,
        "fetched_at": m.fetched_at,
        "message_id": m.message_id,
        "in_reply_to": m.in_reply_to,
        "references": list(m.references),
        "size": m.size,
        "folder": m.origin.folder,
        "uid": m.origin.uid,
        "uidl": m.origin.uidl,
        "flags": list(m.origin.flags),
        "has_attachments": m.has_attachments,
    }
    if issubclass(cls, InboxMessageDetail):
        data |= {
            "text_body": m.text_body,
            "html_body": m.html_body,
            "attachments": [AttachmentPublic.model_validate(a) for a in m.attachments],
        }
    return data


InboxPage = PagePublic[InboxMessagePublic]


class FetchReportPublic(Public):
    """The outcome of one fetch run."""

    account_id: int
    protocol: str
    ok: bool
    fetched: int
    stored: int
    quarantined: int
    duplicates: int
    skipped: int
    error: str
    auth_failure: bool
    disabled_reason: str
    folders: list[str]

    @classmethod
    def of(cls, r: FetchReport) -> FetchReportPublic:
        return cls(
            account_id=r.account_id,
            protocol=r.protocol,
            ok=r.ok,
            fetched=r.fetched,
            stored=r.stored,
            quarantined=r.quarantined,
            duplicates=r.duplicates,
            skipped=r.skipped,
            error=r.error,
            auth_failure=r.auth_failure,
            disabled_reason=r.disabled_reason,
            folders=list(r.folders),
        )


class NotificationPublic(Public):
    id: int
    created_at: datetime
    level: str
    message: str
    account_id: int | None
    read_at: datetime | None

    @classmethod
    def of(cls, n: Notification) -> NotificationPublic:
        return cls.model_validate(n)
