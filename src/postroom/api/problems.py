"""Errors → RFC 9457 problem details, in one place. Routes raise postroom errors and nothing else."""

from __future__ import annotations

from collections.abc import Mapping
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


_PROBLEM_SCHEMA = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
_DOCUMENTED = {
    400: "The body could not be read as JSON",
    401: "No or an invalid API token",
    403: "Not allowed for the caller's role or team",
    404: "No such record, or not visible to the caller",
    409: "The record's state does not allow this",
    413: "Request body too large",
    422: "The input is not valid; `errors` names each field at fault",
    502: "A mail server failed or refused (checks, immediate sending, fetching)",
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {
        "description": text,
        "content": {"application/problem+json": {"schema": _PROBLEM_SCHEMA}},
    }
    for code, text in _DOCUMENTED.items()
}
"""The error replies every API route may give, for the OpenAPI document (RFC 9457 bodies)."""


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


def _field_error(error: Mapping[str, Any]) -> dict[str, str]:
    loc = tuple(error.get("loc", ()))
    if error.get("type") == "json_invalid":  # loc is ("body", character offset)
        why = error.get("ctx", {}).get("error", "invalid")
        return {"field": "body", "message": f"is not valid JSON: {why} at character {loc[-1]}"}
    return {"field": _field_path(loc), "message": error.get("msg", "invalid")}


def _invalid(items: list[dict[str, str]]) -> JSONResponse:
    detail = "; ".join(f"{i['field']}: {i['message']}" for i in items)
    return problem(422, "invalid-input", "The input is not valid.", detail, errors=items)


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
        return _invalid([_field_error(e) for e in exc.errors()])

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI turns these into a bare 400 "error parsing the body"; like malformed JSON they
        # are the caller's input error: say which it was.
        if isinstance(exc.__cause__, UnicodeDecodeError):
            return _invalid([{"field": "body", "message": "is not UTF-8 (RFC 8259 §8.1)"}])
        if isinstance(exc.__cause__, RecursionError):
            return _invalid([{"field": "body", "message": "is nested too deeply"}])
        return problem(exc.status_code, "http", str(exc.detail), str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
        # Never a stack trace to a user; the server log has it.
        import logging

        logging.getLogger("postroom.api").exception("unhandled error", exc_info=exc)
        return problem(
            500, "internal", "Internal error", "an unexpected error occurred; it has been logged"
        )
