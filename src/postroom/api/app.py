"""The FastAPI application: REST under /api/v1, OpenAPI at /docs, the web UI mounted beside it."""

from __future__ import annotations

from importlib import import_module

from fastapi import Depends, FastAPI, Request, Response
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint

from postroom import __version__
from postroom.api import problems
from postroom.api.deps import storable_parameters
from postroom.wiring import Container

# Each area's router module (api/routes/<area>.py exposing `router`). Add yours here.
ROUTERS = [
    "postroom.api.routes.outbox",
    "postroom.api.routes.routing",
    "postroom.api.routes.checks",
    "postroom.api.routes.health",
    "postroom.api.routes.inbox",
    "postroom.api.routes.accounts",
    "postroom.api.routes.teams",
    "postroom.api.routes.users",
    "postroom.api.routes.tokens",
    "postroom.api.routes.locations",
    "postroom.api.routes.me",
    "postroom.api.routes.logs",
    "postroom.api.routes.audit",
    "postroom.api.routes.reports",
]


class BodyLimit(BaseHTTPMiddleware):
    """413 for bodies over the limit, decided on Content-Length before anything is read."""

    def __init__(self, app: object, limit: int) -> None:
        super().__init__(app)  # type: ignore[arg-type]
        self._limit = limit

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self._limit):
            return problems.problem(
                413, "too-large", "Request body too large", f"the limit is {self._limit} bytes"
            )
        return await call_next(request)


def create_app(container: Container) -> FastAPI:
    app = FastAPI(
        title="Postroom", version=__version__, docs_url="/docs", openapi_url="/openapi.json"
    )
    app.state.container = container
    problems.install(app)
    app.add_middleware(BodyLimit, limit=container.settings.max_body_bytes)
    for name in ROUTERS:
        # max_body_size also stops chunked bodies, which have no Content-Length for BodyLimit.
        app.include_router(
            import_module(name).router,
            max_body_size=container.settings.max_body_bytes,
            responses=problems.RESPONSES,
            dependencies=[Depends(storable_parameters)],
        )
    import_module("postroom.web.app").mount(app, container)
    return app
