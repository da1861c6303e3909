"""What every page shares: the template environment, the viewer (who is logged in), rendering,
and `WebRoute`, which loads the session, checks CSRF and translates postroom errors into pages
once, so page functions only parse input, call a service and render.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import Response

from postroom.domain.people import Actor, Role, Team
from postroom.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    PostroomError,
    Unauthenticated,
)
from postroom.web import csrf
from postroom.web.session import Session, SessionCodec
from postroom.wiring import Container

HERE = Path(__file__).parent

# (label, path, minimum role) — the navigation, filtered by the viewer's role.
NAV: tuple[tuple[str, str, Role], ...] = (
    ("Accounts", "/accounts", Role.MEMBER),
    ("Outbox", "/outbox", Role.MEMBER),
    ("Inbox", "/inbox", Role.MEMBER),
    ("Logs", "/logs", Role.MEMBER),
    ("Reports", "/reports/masters", Role.MANAGER),
    ("Admin", "/admin", Role.ADMIN),
)
_RANK = {Role.MEMBER: 0, Role.MANAGER: 1, Role.ADMIN: 2}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "—"


def _cell(value: object) -> str:
    """A report cell: times formatted, booleans as yes/no, missing values as a dash."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return _when(value) if isinstance(value, datetime) else str(value)


def make_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["cell"] = _cell
    return env


@dataclass
class WebState:
    """Held on app.state.web: the container, the session codec and the template environment."""

    container: Container
    codec: SessionCodec
    templates: Environment


@dataclass(frozen=True)
class Viewer:
    """The logged-in user of this request."""

    actor: Actor
    session: Session
    container: Container

    @cached_property
    def teams(self) -> list[Team]:
        """The teams the viewer can see (fetched once per request)."""
        return self.container.people.list_teams(self.actor)

    @cached_property
    def unread(self) -> int:
        """Unread notifications (admins only; 0 for everyone else). The service returns at
        most 100, which the navigation shows as "99+"."""
        if not self.actor.is_admin:
            return 0
        return len(self.container.log.notifications(self.actor, unread_only=True))

    @property
    def nav(self) -> list[tuple[str, str, int]]:
        """(label, path, unread count) of the navigation entries the viewer may open."""
        rank = _RANK[self.actor.role]
        items = [(label, path, 0) for label, path, role in NAV if rank >= _RANK[role]]
        if self.actor.is_admin:
            items.append(("Notifications", "/notifications", self.unread))
        if "demo" in self.container.extras:
            items.append(("Demo inbox", "/demo", 0))
        return items


def state(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web


def session_of(request: Request) -> Session:
    session: Session = request.state.session
    return session


def current_viewer(request: Request) -> Viewer:
    """The viewer, or Unauthenticated (WebRoute turns that into a redirect to the login page)."""
    web = state(request)
    session = session_of(request)
    user_id = session.user_id
    actor = web.container.people.actor_for(user_id) if user_id is not None else None
    if actor is None:
        raise Unauthenticated("please log in")
    viewer = Viewer(actor, session, web.container)
    request.state.viewer = viewer
    return viewer


ViewerDep = Annotated[Viewer, Depends(current_viewer)]


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render `template` with the shared context (viewer, csrf token, notices, teams)."""
    web = state(request)
    session = session_of(request)
    viewer: Viewer | None = getattr(request.state, "viewer", None)
    teams = viewer.teams if viewer else []
    html = web.templates.get_template(template).render(
        request=request,
        path=request.url.path,
        viewer=viewer,
        csrf_token=session.csrf_token,
        notices=session.pop_notices(),
        teams=teams,
        team_id=session.team_id,
        **context,
    )
    return HTMLResponse(html, status_code=status)


def redirect(url: str) -> RedirectResponse:
    """POST → redirect → GET (303 makes the browser follow with a GET)."""
    return RedirectResponse(url, status_code=303)


def back(request: Request, fallback: str = "/") -> str:
    """Where the form came from (same host only), else `fallback`."""
    referer = request.headers.get("referer", "")
    parts = urlsplit(referer)
    if referer and parts.netloc == request.headers.get("host"):
        return parts.path + (f"?{parts.query}" if parts.query else "")
    return fallback


# Our pages load only our own script and stylesheet (inline style attributes for colour chips);
# nobody else may frame them (clickjacking) and forms post only back to us.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "frame-ancestors 'self'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_STATUS: tuple[tuple[type[PostroomError], int], ...] = (
    (InvalidInput, 422),
    (NotFound, 404),
    (Conflict, 409),
    (Forbidden, 403),
)


class WebRoute(APIRoute):
    """A route of the web UI: session in, CSRF checked, errors rendered, session cookie out."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            web = state(request)
            session = web.codec.load(request)
            request.state.session = session
            try:
                if request.method not in csrf.SAFE_METHODS:
                    await csrf.verify(request, session)
                response = await original(request)
            except Unauthenticated:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                response = redirect("/login?next=" + quote(target, safe=""))
            except PostroomError as exc:
                response = _error_response(request, session, exc)
            web.codec.save(session, response)
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            return response

        return handler


def _error_response(request: Request, session: Session, exc: PostroomError) -> Response:
    status = next((code for cls, code in _STATUS if isinstance(exc, cls)), 500)
    if request.method == "POST" and status in (409, 422):
        # An action refused by the rules: say why on the page the user came from.
        session.notify(exc.message, "error")
        return redirect(back(request))
    return render(request, "error.html", status=status, status_code=status, message=exc.message)
