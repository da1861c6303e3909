"""The inbox over REST: an account's fetched messages (search, paging, sort), one message,
its raw .eml and attachments, the quarantine, a manual fetch, and admins' notifications.

Paths span three nouns (accounts/{id}/messages, inbox/…, notifications), so this router has the
bare /api/v1 prefix. Access is decided by the services (another team's message is a 404).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response
from fastapi.responses import StreamingResponse

from postroom.api.deps import INT32_MAX, ActorDep, ContainerDep, Offset
from postroom.api.schemas.common import AwareInstant
from postroom.api.schemas.inbox import (
    FetchReportPublic,
    InboxMessageDetail,
    InboxMessagePublic,
    InboxPage,
    NotificationPublic,
)
from postroom.domain.inbox import InboxQuery, MessageStatus, SortField
from postroom.errors import Forbidden, InvalidInput
from postroom.services.inbox import RawDownload

router = APIRouter(prefix="/api/v1", tags=["inbox"])

AccountId = Annotated[int, Path(ge=1, le=INT32_MAX)]
MessageId = Annotated[int, Path(ge=1, le=INT32_MAX)]
Since = Annotated[AwareInstant | None, Query(description="date (Date header) on or after")]
Until = Annotated[AwareInstant | None, Query(description="date before")]
Sender = Annotated[str, Query(max_length=200, description="sender name or address contains")]
Subject = Annotated[str, Query(max_length=200, description="subject contains")]
Sort = Annotated[str, Query(description="date, fetched, subject, sender or size; -x: descending")]


def _query(
    *,
    sender: str = "",
    subject: str = "",
    since: AwareInstant | None = None,
    until: AwareInstant | None = None,
    has_attachments: bool | None = None,
    sort: str = "-date",
    offset: int = 0,
    limit: int = 50,
    status: MessageStatus | None = MessageStatus.PARSED,
) -> InboxQuery:
    descending = sort.startswith("-")
    try:
        field = SortField(sort.lstrip("-"))
    except ValueError:
        raise InvalidInput(
            fields={"sort": "must be date, fetched, subject, sender or size, optionally with -"}
        ) from None
    return InboxQuery(
        sender=sender,
        subject=subject,
        since=since,
        until=until,
        has_attachments=has_attachments,
        status=status,
        sort=field,
        descending=descending,
        limit=limit,
        offset=offset,
    )


def _download(item: RawDownload, *, inline: bool = False) -> StreamingResponse:
    disposition = "inline" if inline else "attachment"
    safe = item.filename.replace('"', "_").encode("ascii", "replace").decode()
    return StreamingResponse(
        item.chunks,
        media_type=item.content_type,
        headers={
            "Content-Disposition": f'{disposition}; filename="{safe}"',
            "Content-Length": str(item.size),
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/accounts/{account_id}/messages")
def list_messages(
    account_id: AccountId,
    container: ContainerDep,
    actor: ActorDep,
    sender: Sender = "",
    subject: Subject = "",
    since: Since = None,
    until: Until = None,
    has_attachments: bool | None = None,
    sort: Sort = "-date",
    offset: Offset = 0,
    limit: int = 50,
) -> InboxPage:
    """An account's fetched messages (quarantined ones are listed under /inbox/quarantine)."""
    query = _query(
        sender=sender,
        subject=subject,
        since=since,
        until=until,
        has_attachments=has_attachments,
        sort=sort,
        offset=offset,
        limit=limit,
    )
    page = container.inbox.list(actor, account_id, query)
    return InboxPage.of(page, InboxMessagePublic.of)


@router.post("/accounts/{account_id}/fetch")
def fetch_now(account_id: AccountId, container: ContainerDep, actor: ActorDep) -> FetchReportPublic:
    """Fetch the account now and wait for the result (409 while another fetch runs)."""
    account = container.accounts.get(actor, account_id)
    if not actor.can_manage(account.team_id):
        raise Forbidden("only managers of the account's team can fetch it by hand")
    return FetchReportPublic.of(container.fetching.fetch_account(account_id))


@router.get("/inbox/messages/{message_id}")
def get_message(
    message_id: MessageId, container: ContainerDep, actor: ActorDep
) -> InboxMessageDetail:
    return InboxMessageDetail.of(container.inbox.get(actor, message_id))


@router.get("/inbox/messages/{message_id}/raw", response_class=StreamingResponse)
def download_raw(message_id: MessageId, container: ContainerDep, actor: ActorDep) -> Response:
    """The message exactly as received, as a .eml file."""
    return _download(container.inbox.raw(actor, message_id))


@router.get("/inbox/messages/{message_id}/attachments/{index}", response_class=StreamingResponse)
def download_attachment(
    message_id: MessageId,
    index: Annotated[int, Path(ge=0, le=10_000)],
    container: ContainerDep,
    actor: ActorDep,
) -> Response:
    return _download(container.inbox.attachment(actor, message_id, index))


@router.get("/inbox/quarantine")
def list_quarantine(
    container: ContainerDep,
    actor: ActorDep,
    account_id: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    sender: Sender = "",
    subject: Subject = "",
    since: Since = None,
    until: Until = None,
    sort: Annotated[str, Query()] = "-fetched",
    offset: Offset = 0,
    limit: int = 50,
) -> InboxPage:
    """Messages that could not be parsed or were too large, with the reason; download one with
    /inbox/messages/{id}/raw and retry it with /inbox/messages/{id}/reparse."""
    query = _query(
        sender=sender,
        subject=subject,
        since=since,
        until=until,
        sort=sort,
        offset=offset,
        limit=limit,
        status=MessageStatus.QUARANTINED,
    )
    page = container.inbox.quarantine(actor, query, account_id)
    return InboxPage.of(page, InboxMessagePublic.of)


@router.post("/inbox/messages/{message_id}/reparse")
def reparse(message_id: MessageId, container: ContainerDep, actor: ActorDep) -> InboxMessageDetail:
    """Parse the stored raw bytes again; a message that now parses leaves the quarantine."""
    return InboxMessageDetail.of(container.inbox.reparse(actor, message_id))


@router.get("/notifications")
def list_notifications(
    container: ContainerDep, actor: ActorDep, unread: bool = False
) -> list[NotificationPublic]:
    """What admins must know about, e.g. an account whose fetching was switched off."""
    return [NotificationPublic.of(n) for n in container.log.notifications(actor, unread)]


@router.post("/notifications/{notification_id}/read", status_code=204)
def mark_notification_read(
    notification_id: Annotated[int, Path(ge=1, le=INT32_MAX)],
    container: ContainerDep,
    actor: ActorDep,
) -> Response:
    container.log.mark_read(actor, notification_id)
    return Response(status_code=204)
