"""/api/v1/logs: the system log (seed 001), filtered; one entry with its transcript."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from postroom.api.deps import ActorDep, ContainerDep, Offset
from postroom.api.schemas.accounts import INT32_MAX
from postroom.api.schemas.common import AwareInstant
from postroom.api.schemas.logs import LogEntryDetail, LogEntryPublic, LogPage
from postroom.storage.audit import LogFilter

router = APIRouter(prefix="/api/v1/logs", tags=["logs"])


@router.get("")
def list_logs(
    container: ContainerDep,
    actor: ActorDep,
    source: Annotated[str | None, Query(max_length=40, description="e.g. SMTP Auth")] = None,
    level: Annotated[str | None, Query(description="debug, info, warning or error")] = None,
    account_id: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    user: Annotated[str | None, Query(max_length=320)] = None,
    since: AwareInstant | None = None,
    until: AwareInstant | None = None,
    q: Annotated[str, Query(max_length=200, description="message contains")] = "",
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> LogPage:
    """Newest first; non-admins see only entries of accounts they can read."""
    flt = LogFilter(
        source=source,
        level=level,
        account_id=account_id,
        user=user,
        since=since,
        until=until,
        search=q,
        offset=offset,
        limit=limit,
    )
    return LogPage.of(container.log.query(actor, flt), LogEntryPublic.of)


@router.get("/{log_id}")
def get_log(
    log_id: Annotated[int, Path(ge=1, le=INT32_MAX)], container: ContainerDep, actor: ActorDep
) -> LogEntryDetail:
    return LogEntryDetail.of(container.log.get(actor, log_id))
