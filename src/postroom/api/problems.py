"""Errors → RFC 9457 problem details, in one place. Routes raise postroom errors and nothing else."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from postroom import errors

STATUS: list[tuple[type[errors.PostroomError], int, str]] = [
    (errors.InvalidInput, 422, "invalid-input"),
    (errors.NotFound, 404, "not-found"),
    (errors.Conflict, 409, "conflict"),
    (errors.Unauthenticated, 401, "unauthenticated"),
    (errors.Forbidden, 403, "forbidden"),
    (errors.DestinationRefused, 422, "destination-refused"),
    (errors.ProtocolError, 502, "mail-server-error"),
    (errors.DeliveryError, 502, "delivery-failed"),
    (errors.FetchError, 502, "fetch-failed"),
    (errors.SecretError, 500, "secret-error"),
    (errors.ConfigurationError, 500, "configuration-error"),
]


def problem(status: int, kind: str, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {
        "type": f"https://postroom.dev/problems/{kind}",
        "title": title,
        "status": status,
        "detail": detail,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers=headers
    )


def _field_path(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(errors.PostroomError)
    async def _postroom_error(_: Request, exc: errors.PostroomError) -> JSONResponse:
        status, kind = next(
            ((s, k) for cls, s, k in STATUS if isinstance(exc, cls)), (500, "internal")
        )
        fields = getattr(exc, "fields", {})
        extra: dict[str, Any] = {}
        if fields:
            extra["errors"] = [{"field": k, "message": v} for k, v in fields.items()]
        title = (type(exc).__doc__ or "Error").strip().splitlines()[0]
        return problem(status, kind, title, exc.message, **extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        items = [
            {"field": _field_path(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{i['field']}: {i['message']}" for i in items)
        return problem(422, "invalid-input", "The input is not valid.", detail, errors=items)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, "http", str(exc.detail), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Never a stack trace to a user; the server log has it.
        import logging

        logging.getLogger("postroom.api").exception("unhandled error", exc_info=exc)
        return problem(
            500, "internal", "Internal error", "an unexpected error occurred; it has been logged"
        )
