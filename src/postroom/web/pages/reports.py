"""Reports: the Mail Server Masters table (seed 000) with CSV export and a print stylesheet."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from postroom.services.reports import MASTERS_COLUMNS
from postroom.web.core import ViewerDep, WebRoute, render

router = APIRouter(route_class=WebRoute)


@router.get("/reports/masters")
def masters(request: Request, viewer: ViewerDep, deleted: bool = False) -> Response:
    rows = viewer.container.reports.mail_server_masters(viewer.actor, include_deleted=deleted)
    return render(
        request, "reports/masters.html", rows=rows, columns=MASTERS_COLUMNS, deleted=deleted
    )


@router.get("/reports/masters.csv")
def masters_csv(viewer: ViewerDep, deleted: bool = False) -> Response:
    reports = viewer.container.reports
    rows = reports.mail_server_masters(viewer.actor, include_deleted=deleted)
    return Response(
        reports.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="mail-server-masters.csv"'},
    )
