"""Schemas of the audit trail, comments and the account timeline."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

from postroom.api.schemas.common import PagePublic, Public, Strict


class AuditEntryPublic(Public):
    id: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: int | None
    account_id: int | None
    changes: dict[str, Any] = Field(description="{field: [old, new]}, secrets masked")


AuditPage = PagePublic[AuditEntryPublic]


class CommentCreate(Strict):
    body: Annotated[str, Field(min_length=1, max_length=10_000)]


class CommentPublic(Public):
    id: int
    account_id: int
    author: str
    body: str
    created_at: datetime


class TimelineEventPublic(Public):
    """kind: audit | comment | log; ref_id points into that kind's list."""

    at: datetime
    kind: str
    actor: str
    title: str
    detail: dict[str, Any]
    ref_id: int
