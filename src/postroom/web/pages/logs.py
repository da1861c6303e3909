"""The system log (seed 001): filters by source, level, account, user and time; entry detail
with its transcript."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request
from starlette.responses import Response

from postroom.domain.accounts import AccountQuery
from postroom.errors import InvalidInput
from postroom.services.log import LEVELS, SOURCES
from postroom.storage.audit import LogFilter
from postroom.web.core import ViewerDep, WebRoute, render

router = APIRouter(route_class=WebRoute)
PAGE_SIZE = 50


def _time(field: str, value: str) -> datetime | None:
    """A datetime-local input value (taken as UTC), or None when empty."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidInput(fields={field: "must be a date and time"}) from None


@router.get("/logs")
def log_list(
    request: Request,
    viewer: ViewerDep,
    source: str = "",
    level: str = "",
    account: str = "",
    user: str = "",
    since: str = "",
    until: str = "",
    q: str = "",
    page: int = 1,
) -> Response:
    page = max(page, 1)
    flt = LogFilter(
        source=source or None,
        level=level or None,
        account_id=int(account) if account.isdigit() else None,
        user=user or None,
        since=_time("since", since),
        until=_time("until", until),
        search=q,
        offset=(page - 1) * PAGE_SIZE,
        limit=PAGE_SIZE,
    )
    result = viewer.container.log.query(viewer.actor, flt)
    accounts = viewer.container.accounts.list(viewer.actor, AccountQuery(status=None, limit=500))
    return render(
        request,
        "logs/list.html",
        entries=result.items,
        total=result.total,
        page=page,
        pages=max(1, -(-result.total // PAGE_SIZE)),
        sources=SOURCES,
        levels=LEVELS,
        accounts=accounts.items,
        account_names={a.id: a.name for a in accounts.items},
        f={
            "source": source,
            "level": level,
            "account": account,
            "user": user,
            "since": since,
            "until": until,
            "q": q,
        },
    )


@router.get("/logs/{entry_id:int}")
def log_entry(request: Request, viewer: ViewerDep, entry_id: int) -> Response:
    entry = viewer.container.log.get(viewer.actor, entry_id)
    return render(request, "logs/detail.html", entry=entry)
