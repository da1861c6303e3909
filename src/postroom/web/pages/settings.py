"""My settings (seed 004 "My details"): per-employee credentials and current work location."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from postroom.domain.accounts import AccountQuery, AccountStatus, AuthMode
from postroom.web.core import ViewerDep, WebRoute, redirect, render

router = APIRouter(route_class=WebRoute)


@router.get("/settings")
def my_settings(request: Request, viewer: ViewerDep) -> Response:
    c, actor = viewer.container, viewer.actor
    me = c.people.get_user(actor, actor.user_id) if actor.user_id is not None else None
    active = c.accounts.list(actor, AccountQuery(status=AccountStatus.ACTIVE, limit=500)).items
    per_employee = [
        a for a in active if a.outgoing and a.outgoing.auth_mode is AuthMode.PER_EMPLOYEE
    ]
    return render(
        request,
        "settings/index.html",
        me=me,
        locations=c.people.list_locations(),
        per_employee=per_employee,
        credentials={cr.account_id: cr for cr in c.people.my_credentials(actor)},
    )


@router.post("/settings/location")
def set_location(viewer: ViewerDep, location_id: Annotated[str, Form()] = "") -> Response:
    location = int(location_id) if location_id.isdigit() else None
    viewer.container.people.set_my_location(viewer.actor, location)
    viewer.session.notify("Work location saved.")
    return redirect("/settings")


@router.post("/settings/credentials/{account_id:int}")
def put_credentials(
    viewer: ViewerDep,
    account_id: int,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
) -> Response:
    viewer.container.people.put_my_credentials(
        viewer.actor, account_id, username.strip(), password or None
    )
    viewer.session.notify("Your credentials were saved.")
    return redirect("/settings")


@router.post("/settings/credentials/{account_id:int}/delete")
def delete_credentials(viewer: ViewerDep, account_id: int) -> Response:
    viewer.container.people.delete_my_credentials(viewer.actor, account_id)
    viewer.session.notify("Your credentials were removed.")
    return redirect("/settings")
