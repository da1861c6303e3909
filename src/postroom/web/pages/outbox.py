"""Outbox: the queue (queued / sending / deferred), the Sent archive, the Failed journal with
resend and cancel, and a message's recipients and attempts (seed 002)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.responses import Response

from postroom.domain.accounts import AccountQuery
from postroom.domain.outbox import MessageStatus, OutboxQuery
from postroom.web.core import ViewerDep, WebRoute, back, redirect, render

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 50

VIEWS: dict[str, tuple[str, tuple[MessageStatus, ...]]] = {
    "queue": ("Queue", (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.DEFERRED)),
    "sent": ("Sent", (MessageStatus.SENT,)),
    "failed": ("Failed", (MessageStatus.FAILED,)),
    "cancelled": ("Cancelled", (MessageStatus.CANCELLED,)),
}


@router.get("/outbox")
def journal(
    request: Request,
    viewer: ViewerDep,
    view: str = "queue",
    account: str = "",
    q: str = "",
    page: int = 1,
) -> Response:
    view = view if view in VIEWS else "queue"
    page = max(page, 1)
    query = OutboxQuery(
        statuses=VIEWS[view][1],
        account_id=int(account) if account.isdigit() else None,
        search=q,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    c = viewer.container
    result = c.outbox.list(viewer.actor, query)
    accounts = c.accounts.list(viewer.actor, AccountQuery(status=None, limit=500)).items
    return render(
        request,
        "outbox/list.html",
        view=view,
        views=VIEWS,
        messages=result.items,
        total=result.total,
        page=page,
        pages=max(1, -(-result.total // PAGE_SIZE)),
        accounts=[a for a in accounts if a.outgoing is not None],
        account_names={a.id: a.name for a in accounts},
        account=account,
        q=q,
    )


@router.get("/outbox/counts")
def counts(viewer: ViewerDep, account: str = "") -> Response:
    """Queue counters for app.js: {status: count}."""
    account_id = int(account) if account.isdigit() else None
    return JSONResponse(viewer.container.outbox.counts(viewer.actor, account_id))


@router.get("/outbox/{message_id:int}")
def message(request: Request, viewer: ViewerDep, message_id: int) -> Response:
    c = viewer.container
    msg = c.outbox.get(viewer.actor, message_id)
    account = c.accounts.get_system(msg.account_id)
    return render(request, "outbox/detail.html", msg=msg, account=account)


@router.post("/outbox/{message_id:int}/resend")
def resend(request: Request, viewer: ViewerDep, message_id: int) -> Response:
    viewer.container.outbox.resend(viewer.actor, message_id)
    viewer.session.notify(f"Message {message_id} queued again (same Message-ID).")
    return redirect(back(request, f"/outbox/{message_id}"))


@router.post("/outbox/{message_id:int}/cancel")
def cancel(request: Request, viewer: ViewerDep, message_id: int) -> Response:
    viewer.container.outbox.cancel(viewer.actor, message_id)
    viewer.session.notify(f"Message {message_id} cancelled.")
    return redirect(back(request, f"/outbox/{message_id}"))
