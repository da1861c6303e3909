"""Messages: submit (single and bulk), the queue and journals, resend, cancel, pause/resume."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from postroom.api.deps import INT32_MAX, ActorDep, ContainerDep, Offset
from postroom.api.schemas.common import Instant, PagePublic
from postroom.api.schemas.outbox import (
    BulkCreate,
    DeliveryPublic,
    MessageCreate,
    MessagePublic,
    MessageSummary,
    SubmitPublic,
)
from postroom.domain.outbox import MessageStatus, OutboxQuery
from postroom.errors import InvalidInput

router = APIRouter(prefix="/api/v1", tags=["outbox"])

MessageId = Annotated[int, Path(ge=1, le=INT32_MAX)]
AccountId = Annotated[int, Path(ge=1, le=INT32_MAX)]
IdempotencyKey = Annotated[str | None, Header(max_length=200)]


@router.post("/messages", response_model=SubmitPublic)
def submit(
    body: MessageCreate,
    response: Response,
    container: ContainerDep,
    actor: ActorDep,
    idempotency_key: IdempotencyKey = None,
) -> SubmitPublic:
    """202 when queued; 200 with the result when sent in the request (immediate mode) or when an
    idempotency key returned the earlier message (`created: false`)."""
    done = container.outbox.submit(actor, body.to_draft(idempotency_key))
    queued = done.created and done.result is None
    response.status_code = 202 if queued else 200
    return SubmitPublic(
        message=MessagePublic.of(done.message),
        created=done.created,
        result=None if done.result is None else DeliveryPublic.model_validate(done.result),
    )


@router.post("/messages/bulk", status_code=202, response_model=list[MessageSummary])
def submit_bulk(body: BulkCreate, container: ContainerDep, actor: ActorDep) -> list[MessageSummary]:
    drafts = [item.to_draft(prefix=f"items[{i}].") for i, item in enumerate(body.items)]
    return [MessageSummary.model_validate(m) for m in container.outbox.submit_many(actor, drafts)]


@router.get("/messages", response_model=PagePublic[MessageSummary])
def list_messages(
    container: ContainerDep,
    actor: ActorDep,
    status: Annotated[list[MessageStatus] | None, Query()] = None,
    account_id: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    search: Annotated[str, Query(max_length=200)] = "",
    since: Instant | None = None,
    until: Instant | None = None,
    offset: Offset = 0,
    limit: int = 50,
) -> PagePublic[MessageSummary]:
    """The queue (status=queued&status=sending&status=deferred), the sent archive (status=sent)
    and the failed journal (status=failed), newest first."""
    for name, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise InvalidInput(fields={name: "must include a time zone"})
    query = OutboxQuery(tuple(status or ()), account_id, search, since, until, offset, limit)
    page = container.outbox.list(actor, query)
    return PagePublic[MessageSummary](
        items=[MessageSummary.model_validate(m) for m in page.items],
        total=page.total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get("/messages/{message_id}", response_model=MessagePublic)
def get_message(message_id: MessageId, container: ContainerDep, actor: ActorDep) -> MessagePublic:
    return MessagePublic.of(container.outbox.get(actor, message_id))


@router.get("/messages/{message_id}/raw")
def get_raw(message_id: MessageId, container: ContainerDep, actor: ActorDep) -> Response:
    return Response(container.outbox.raw(actor, message_id), media_type="message/rfc822")


@router.post("/messages/{message_id}/resend", response_model=MessagePublic)
def resend(message_id: MessageId, container: ContainerDep, actor: ActorDep) -> MessagePublic:
    return MessagePublic.of(container.outbox.resend(actor, message_id))


@router.post("/messages/{message_id}/cancel", response_model=MessagePublic)
def cancel(message_id: MessageId, container: ContainerDep, actor: ActorDep) -> MessagePublic:
    return MessagePublic.of(container.outbox.cancel(actor, message_id))


@router.post("/accounts/{account_id}/pause")
def pause(account_id: AccountId, container: ContainerDep, actor: ActorDep) -> dict[str, object]:
    container.outbox.set_paused(actor, account_id, True)
    return {"account_id": account_id, "paused": True}


@router.post("/accounts/{account_id}/resume")
def resume(account_id: AccountId, container: ContainerDep, actor: ActorDep) -> dict[str, object]:
    container.outbox.set_paused(actor, account_id, False)
    return {"account_id": account_id, "paused": False}
