"""HTML error pages for everything outside the API: an unknown URL gets a 404 page in the
site layout, a bad query string a 422 page, an unexpected failure a 500 page — never a stack
trace. API paths keep their RFC 9457 problem details: `install` wraps the handlers that
api/problems.py registered and hands API requests straight to them.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from contextlib import suppress
from inspect import isawaitable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from postroom.errors import PostroomError
from postroom.web.core import SECURITY_HEADERS, current_viewer, render, state

log = logging.getLogger("postroom.web")
Handler = Callable[[Request, Any], Response | Awaitable[Response]]

# Paths that belong to the API and its documentation, not to the web UI.
API_PREFIXES = ("/api/", "/docs", "/redoc", "/openapi.json")
MESSAGES = {
    404: "There is no page at this address. It may have moved, or the link is mistyped.",
    405: "This page cannot be used that way.",
    500: "Something went wrong on our side. It has been logged; please try again later.",
}
# Used when even the error page cannot be rendered (say, the database is down).
BARE_500 = (
    "<!doctype html><html lang='en'><meta charset='utf-8'><title>Error · Postroom</title>"
    "<link rel='stylesheet' href='/static/app.css'><main id='main'><section class='card narrow'>"
    f"<h1>Something went wrong</h1><p>{MESSAGES[500]}</p><p><a href='/'>Back to the start "
    "page</a></p></section></main></html>"
)


def is_api(path: str) -> bool:
    return path == "/api" or path.startswith(API_PREFIXES)


def error_page(request: Request, status: int, message: str) -> Response:
    """`error.html` in the site layout (with the navigation when someone is logged in)."""
    try:
        if getattr(request.state, "session", None) is None:
            request.state.session = state(request).codec.load(request)
        if getattr(request.state, "viewer", None) is None:
            with suppress(PostroomError):  # not logged in: the page without navigation
                current_viewer(request)
        response: Response = render(
            request, "error.html", status=status, status_code=status, message=message
        )
    except Exception:  # the error page must not fail in turn
        log.exception("the error page could not be rendered")
        response = HTMLResponse(BARE_500, status_code=status)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


async def _call(handler: Handler, request: Request, exc: Exception) -> Response:
    result = handler(request, exc)
    return await result if isawaitable(result) else result


def install(app: FastAPI) -> None:
    """Route errors of non-API paths to HTML pages; API paths keep the handlers already
    installed (api/problems.py must be installed first)."""
    handlers: dict[Any, Handler] = app.exception_handlers
    api_http, api_invalid, api_crash = (
        handlers[StarletteHTTPException],
        handlers[RequestValidationError],
        handlers[Exception],
    )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if is_api(request.url.path):
            return await _call(api_http, request, exc)
        message = MESSAGES.get(exc.status_code, str(exc.detail))
        response = error_page(request, exc.status_code, message)
        for name, value in (exc.headers or {}).items():  # e.g. Allow on a 405
            response.headers[name] = value
        return response

    async def invalid(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        if is_api(request.url.path):
            return await _call(api_invalid, request, exc)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'input'}: {e.get('msg', '')}"
            for e in exc.errors()
        )
        return error_page(
            request, 422, f"The address has a value this page cannot use ({problems})."
        )

    async def crash(request: Request, exc: Exception) -> Response:
        if is_api(request.url.path):
            return await _call(api_crash, request, exc)
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        return error_page(request, 500, MESSAGES[500])

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(Exception, crash)
