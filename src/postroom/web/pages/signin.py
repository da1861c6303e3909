"""Login, logout and the team switcher."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from starlette.responses import Response

from postroom.errors import Unauthenticated
from postroom.web.core import (
    ViewerDep,
    WebRoute,
    current_viewer,
    redirect,
    render,
    session_of,
    state,
)

router = APIRouter(route_class=WebRoute)


def _safe_next(target: str) -> str:
    """Only local paths, so the login form cannot be used as an open redirect."""
    return target if target.startswith("/") and not target.startswith("//") else "/accounts"


@router.get("/", dependencies=[Depends(current_viewer)])
def home() -> Response:
    return redirect("/accounts")


@router.get("/login")
def login_form(request: Request, next: str = "/accounts") -> Response:
    return render(request, "login.html", next=_safe_next(next), email="", error="")


@router.post("/login")
def login(
    request: Request,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/accounts",
) -> Response:
    try:
        user = state(request).container.people.login(email, password)
    except Unauthenticated as exc:
        return render(
            request, "login.html", status=401, next=_safe_next(next), email=email, error=exc.message
        )
    session_of(request).login(user.id)
    return redirect(_safe_next(next))


@router.post("/logout")
def logout(request: Request) -> Response:
    session_of(request).logout()
    return redirect("/login")


@router.post("/team")
def switch_team(viewer: ViewerDep, team_id: Annotated[str, Form()] = "") -> Response:
    """Remember the team the viewer works in; lists filter by it. Empty means all teams."""
    visible = {t.id for t in viewer.container.people.list_teams(viewer.actor)}
    chosen = int(team_id) if team_id.isdigit() and int(team_id) in visible else None
    viewer.session.select_team(chosen)
    return redirect("/accounts")
