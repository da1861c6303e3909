"""Notifications for admins: what the system needs a person to look at (an account whose
fetching was switched off automatically, repeated authentication failures). The navigation
shows the unread count; this page lists them and marks them read."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from postroom.errors import Forbidden
from postroom.web.core import Viewer, ViewerDep, WebRoute, back, redirect, render

router = APIRouter(route_class=WebRoute)


def _admin(viewer: Viewer) -> Viewer:
    if not viewer.actor.is_admin:
        raise Forbidden("only admins see the notifications")
    return viewer


@router.get("/notifications")
def notifications(request: Request, viewer: ViewerDep, unread: bool = False) -> Response:
    c = _admin(viewer).container
    items = c.log.notifications(viewer.actor, unread_only=unread)
    ids = {n.account_id for n in items if n.account_id is not None}
    names = {i: c.accounts.get(viewer.actor, i).name for i in ids}
    return render(
        request, "notifications/list.html", items=items, account_names=names, unread=unread
    )


@router.post("/notifications/{notification_id:int}/read")
def mark_read(request: Request, viewer: ViewerDep, notification_id: int) -> Response:
    _admin(viewer).container.log.mark_read(viewer.actor, notification_id)
    return redirect(back(request, "/notifications"))


@router.post("/notifications/read-all")
def mark_all_read(viewer: ViewerDep) -> Response:
    log = _admin(viewer).container.log
    unread = log.notifications(viewer.actor, unread_only=True)
    for item in unread:
        log.mark_read(viewer.actor, item.id)
    viewer.session.notify(f"{len(unread)} notification(s) marked read.")
    return redirect("/notifications")
