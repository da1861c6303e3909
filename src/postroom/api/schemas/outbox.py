"""Messages, journals and routing over the API. Validation of addresses and headers happens in
the domain (`validate_draft`), so the API, the CLI and library callers refuse the same things."""

from __future__ import annotations

import base64
from datetime import datetime

from pydantic import Field

from postroom.api.schemas.accounts import Id
from postroom.api.schemas.common import Instant, Public, Strict
from postroom.domain.accounts import SendMode
from postroom.domain.outbox import (
    DEFAULT_PRIORITY,
    Attachment,
    Draft,
    MessageStatus,
    OutboxMessage,
    RecipientKind,
    RecipientStatus,
)
from postroom.errors import InvalidInput


class AttachmentCreate(Strict):
    filename: str
    content_type: str = "application/octet-stream"
    content_base64: str


class MessageCreate(Strict):
    to: list[str] = Field(default_factory=list)
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    subject: str = ""
    text: str = ""
    html: str = ""
    from_address: str = ""
    reply_to: str = ""
    attachments: list[AttachmentCreate] = Field(default_factory=list)
    headers: dict[str, str] = Field(default_factory=dict)
    account_id: Id | None = None
    priority: int = DEFAULT_PRIORITY
    send_after: Instant | None = None
    idempotency_key: str | None = None
    mode: SendMode | None = None

    def to_draft(self, idempotency_key: str | None = None, prefix: str = "") -> Draft:
        attachments = []
        for index, item in enumerate(self.attachments):
            try:
                data = base64.b64decode(item.content_base64, validate=True)
            except ValueError as exc:  # binascii.Error, or non-ASCII text
                field = f"{prefix}attachments[{index}].content_base64"
                raise InvalidInput(fields={field: "not valid base64"}) from exc
            attachments.append(Attachment(item.filename, item.content_type, data))
        return Draft(
            to=tuple(self.to),
            cc=tuple(self.cc),
            bcc=tuple(self.bcc),
            subject=self.subject,
            text=self.text,
            html=self.html,
            from_address=self.from_address,
            reply_to=self.reply_to,
            attachments=tuple(attachments),
            headers=tuple(self.headers.items()),
            account_id=self.account_id,
            priority=self.priority,
            send_after=self.send_after,
            idempotency_key=idempotency_key or self.idempotency_key,
            mode=self.mode,
        )


class BulkCreate(Strict):
    items: list[MessageCreate] = Field(min_length=1, max_length=1000)


class RecipientPublic(Public):
    address: str
    kind: RecipientKind
    status: RecipientStatus
    code: int | None
    enhanced: str
    text: str
    updated_at: datetime | None


class AttemptPublic(Public):
    account_id: int
    worker: str
    started_at: datetime
    outcome: str
    code: int | None
    detail: str
    failover_from: int | None


class MessageSummary(Public):
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
    next_attempt_at: datetime | None
    sent_at: datetime | None
    sender_user_id: int | None
    mode: SendMode
    size: int
    last_error: str
    created_by: str


class MessagePublic(MessageSummary):
    recipients: list[RecipientPublic]
    attempts_log: list[AttemptPublic]

    @classmethod
    def of(cls, message: OutboxMessage) -> MessagePublic:
        summary = MessageSummary.model_validate(message).model_dump()
        return cls(
            **summary,
            recipients=[RecipientPublic.model_validate(r) for r in message.recipients],
            attempts_log=[AttemptPublic.model_validate(a) for a in message.attempt_log],
        )


class DeliveryPublic(Public):
    status: MessageStatus
    detail: str
    account_id: int
    transcript: list[dict[str, object]]


class SubmitPublic(Strict):
    message: MessagePublic
    created: bool
    result: DeliveryPublic | None = None


class RouteExplain(Strict):
    account_id: Id | None = None
    sender_user_id: Id | None = None


class RouteStepPublic(Public):
    rule: str
    outcome: str
    detail: str
    account_id: int | None


class RoutePublic(Public):
    account_id: int | None
    account_name: str
    steps: list[RouteStepPublic]
    explanation: str
