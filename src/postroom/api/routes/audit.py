"""/api/v1/audit: the whole audit trail (admins), or one account's (whoever can read it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from postroom.api.deps import ActorDep, ContainerDep, Offset
from postroom.api.schemas.accounts import INT32_MAX
from postroom.api.schemas.audit import AuditEntryPublic, AuditPage

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def list_audit(
    container: ContainerDep,
    actor: ActorDep,
    account_id: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    entity_type: Annotated[
        str | None, Query(max_length=40, description="account, user, team, token, …")
    ] = None,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    """Newest first. Without `account_id` admins only (403 otherwise)."""
    page = container.audit.list(
        actor, account_id=account_id, entity_type=entity_type, offset=offset, limit=limit
    )
    return AuditPage.of(page, AuditEntryPublic.model_validate)
