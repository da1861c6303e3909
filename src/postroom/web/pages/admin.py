"""Admin: teams, work locations, users and API tokens. A new token or generated password is
shown once, on the response to the POST that made it, and never stored in the clear."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from postroom.domain.people import Role
from postroom.errors import Forbidden
from postroom.web.core import Viewer, ViewerDep, WebRoute, redirect, render

router = APIRouter(route_class=WebRoute)
TeamIds = Annotated[list[str], Form()]


def _page(request: Request, viewer: Viewer, **once: str) -> Response:
    c, actor = viewer.container, viewer.actor
    response = render(
        request,
        "admin/index.html",
        users=c.people.list_users(actor),
        all_teams=c.people.list_teams(actor),
        locations=c.people.list_locations(),
        tokens=c.people.list_tokens(actor),
        roles=list(Role),
        once=once,
    )
    if once:
        response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/admin")
def admin(request: Request, viewer: ViewerDep) -> Response:
    if not viewer.actor.is_admin:
        raise Forbidden("only admins can open the admin pages")
    return _page(request, viewer)


@router.post("/admin/teams")
def create_team(viewer: ViewerDep, name: Annotated[str, Form()] = "") -> Response:
    team = viewer.container.people.create_team(viewer.actor, name.strip())
    viewer.session.notify(f"Team {team.name} created.")
    return redirect("/admin#teams")


@router.post("/admin/locations")
def create_location(
    viewer: ViewerDep, name: Annotated[str, Form()] = "", address: Annotated[str, Form()] = ""
) -> Response:
    location = viewer.container.people.create_location(viewer.actor, name.strip(), address)
    viewer.session.notify(f"Work location {location.name} created.")
    return redirect("/admin#locations")


@router.post("/admin/users")
def create_user(
    request: Request,
    viewer: ViewerDep,
    email: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    role: Annotated[Role, Form()] = Role.MEMBER,
    password: Annotated[str, Form()] = "",
    team_ids: TeamIds = [],  # noqa: B006 - FastAPI copies defaults per request
) -> Response:
    generated = "" if password else secrets.token_urlsafe(12)
    user = viewer.container.people.create_user(
        viewer.actor,
        email=email,
        name=name,
        role=role,
        password=password or generated,
        team_ids=[int(t) for t in team_ids if t.isdigit()],
    )
    if generated:
        return _page(request, viewer, password=generated, user=user.email)
    viewer.session.notify(f"User {user.email} created.")
    return redirect("/admin#users")


@router.post("/admin/users/{user_id:int}")
def update_user(
    viewer: ViewerDep,
    user_id: int,
    role: Annotated[Role, Form()],
    active: Annotated[str, Form()] = "",
    team_ids: TeamIds = [],  # noqa: B006 - FastAPI copies defaults per request
) -> Response:
    user = viewer.container.people.update_user(
        viewer.actor,
        user_id,
        role=role,
        active=active == "on",
        team_ids=[int(t) for t in team_ids if t.isdigit()],
    )
    viewer.session.notify(f"User {user.email} updated.")
    return redirect("/admin#users")


@router.post("/admin/tokens")
def create_token(
    request: Request,
    viewer: ViewerDep,
    user_id: Annotated[int, Form()],
    name: Annotated[str, Form()] = "",
) -> Response:
    token = viewer.container.people.create_token(viewer.actor, user_id, name.strip())
    return _page(request, viewer, token=token)


@router.post("/admin/tokens/{token_id:int}/revoke")
def revoke_token(viewer: ViewerDep, token_id: int) -> Response:
    viewer.container.people.revoke_token(viewer.actor, token_id)
    viewer.session.notify(f"Token {token_id} revoked.")
    return redirect("/admin#tokens")
