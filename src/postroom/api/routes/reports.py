"""/api/v1/reports: the "Mail Server Masters" report (seed 000) as JSON or CSV."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from postroom.api.deps import ActorDep, ContainerDep
from postroom.api.schemas.reports import MastersReport
from postroom.services.reports import MASTERS_COLUMNS
from postroom.wiring import Container

router = APIRouter(prefix="/api/v1/reports", tags=["reports"])

_CSV = {"content": {"text/csv": {}}, "description": "with ?format=csv"}


def _csv(container: Container, rows: list[dict[str, object]]) -> Response:
    return Response(
        container.reports.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="mail-server-masters.csv"'},
    )


@router.get("/mail-server-masters", response_model=MastersReport, responses={200: _CSV})
def mail_server_masters(
    container: ContainerDep,
    actor: ActorDep,
    format: Literal["json", "csv"] = "json",
    include_deleted: bool = False,
) -> MastersReport | Response:
    """One row per account the caller can see, with its servers, defaults and health."""
    rows = container.reports.mail_server_masters(actor, include_deleted=include_deleted)
    if format == "csv":
        return _csv(container, rows)
    return MastersReport(columns=list(MASTERS_COLUMNS), rows=rows)


@router.get("/mail-server-masters.csv", response_class=Response, responses={200: _CSV})
def mail_server_masters_csv(
    container: ContainerDep, actor: ActorDep, include_deleted: bool = False
) -> Response:
    rows = container.reports.mail_server_masters(actor, include_deleted=include_deleted)
    return _csv(container, rows)
