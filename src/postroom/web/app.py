"""The web UI: server-rendered pages under /, static files under /static.

`mount(app, container)` is the one call api/app.py makes; every page module contributes an
APIRouter whose routes use `WebRoute` (session, CSRF, error pages).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from postroom.settings import resolve_secret_keys
from postroom.web import error_pages
from postroom.web.core import HERE, WebRoute, WebState, make_environment
from postroom.web.pages import (
    account_form,
    accounts,
    admin,
    demo,
    inbox,
    logs,
    notifications,
    outbox,
    reports,
    settings,
    signin,
)
from postroom.web.session import SessionCodec
from postroom.wiring import Container

router = APIRouter(route_class=WebRoute, include_in_schema=False)
for _module in (
    signin,
    account_form,
    accounts,
    logs,
    outbox,
    inbox,
    reports,
    settings,
    admin,
    notifications,
    demo,
):
    router.include_router(_module.router)


def mount(app: FastAPI, container: Container) -> None:
    """Serve the web UI from `app` (pages, static files, HTML error pages for non-API paths)
    using `container`'s services. Call after api/problems.install."""
    settings_ = container.settings
    codec = SessionCodec(
        resolve_secret_keys(settings_)[0],
        max_age_s=settings_.session_max_age_s,
        secure=settings_.is_production,
    )
    app.state.web = WebState(container, codec, make_environment())
    app.include_router(router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    error_pages.install(app)
