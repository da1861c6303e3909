"""The Demo inbox: what the demo capture server received (only with `postroom serve --demo`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from postroom.errors import NotFound
from postroom.web.core import ViewerDep, WebRoute, render

router = APIRouter(route_class=WebRoute)


@router.get("/demo")
def demo_inbox(request: Request, viewer: ViewerDep) -> Response:
    handle = viewer.container.extras.get("demo")
    if handle is None:
        raise NotFound("the demo is not running (start with `postroom serve --demo`)")
    return render(request, "demo/inbox.html", handle=handle, messages=handle.messages)
