"""Inbox: an account's fetched messages, one message (sanitised HTML in a sandboxed iframe, text
fallback, attachments), and the quarantine."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from postroom.domain.accounts import AccountQuery
from postroom.domain.inbox import InboxQuery
from postroom.services.inbox import RawDownload
from postroom.web.core import ViewerDep, WebRoute, redirect, render

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 50
# The message HTML is already sanitised (nh3); this policy is the second wall: no scripts, no
# remote loads (tracking pixels), no forms, even if something slipped through.
HTML_CSP = "sandbox; default-src 'none'; img-src data: cid:; style-src 'unsafe-inline'"


@router.get("/inbox")
def inbox(
    request: Request, viewer: ViewerDep, account: str = "", q: str = "", page: int = 1
) -> Response:
    c = viewer.container
    accounts = [
        a
        for a in c.accounts.list(viewer.actor, AccountQuery(status=None, limit=500)).items
        if a.incoming is not None
    ]
    page = max(page, 1)
    selected = int(account) if account.isdigit() else (accounts[0].id if accounts else None)
    result = None
    if selected is not None:
        query = InboxQuery(subject=q, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
        result = c.inbox.list(viewer.actor, selected, query)
    return render(
        request,
        "inbox/list.html",
        accounts=accounts,
        selected=selected,
        result=result,
        q=q,
        page=page,
        pages=max(1, -(-(result.total if result else 0) // PAGE_SIZE)),
    )


@router.get("/inbox/quarantine")
def quarantine(request: Request, viewer: ViewerDep, page: int = 1) -> Response:
    page = max(page, 1)
    query = InboxQuery(offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE)
    result = viewer.container.inbox.quarantine(viewer.actor, query)
    return render(request, "inbox/quarantine.html", result=result, page=page)


@router.get("/inbox/{message_id:int}")
def message(request: Request, viewer: ViewerDep, message_id: int) -> Response:
    msg = viewer.container.inbox.get(viewer.actor, message_id)
    account = viewer.container.accounts.get(viewer.actor, msg.account_id)
    return render(request, "inbox/detail.html", msg=msg, account=account)


@router.get("/inbox/{message_id:int}/body.html")
def message_html(viewer: ViewerDep, message_id: int) -> Response:
    """The sanitised HTML body, for the sandboxed iframe only."""
    msg = viewer.container.inbox.get(viewer.actor, message_id)
    return Response(
        msg.html_body,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": HTML_CSP, "X-Content-Type-Options": "nosniff"},
    )


def _download(item: RawDownload) -> Response:
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in item.filename)
    return StreamingResponse(
        item.chunks,
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{safe or "download"}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


@router.get("/inbox/{message_id:int}/raw")
def raw(viewer: ViewerDep, message_id: int) -> Response:
    return _download(viewer.container.inbox.raw(viewer.actor, message_id))


@router.get("/inbox/{message_id:int}/attachments/{index:int}")
def attachment(viewer: ViewerDep, message_id: int, index: int) -> Response:
    # Always a download (octet-stream): an attached .html must not run on our origin.
    return _download(viewer.container.inbox.attachment(viewer.actor, message_id, index))


@router.post("/inbox/{message_id:int}/reparse")
def reparse(viewer: ViewerDep, message_id: int) -> Response:
    msg = viewer.container.inbox.reparse(viewer.actor, message_id)
    outcome = msg.status.value
    if msg.quarantine_reason:
        outcome += f" ({msg.quarantine_reason})"
    viewer.session.notify(f"Message {message_id} re-parsed: {outcome}.")
    return redirect(f"/inbox/{message_id}")
