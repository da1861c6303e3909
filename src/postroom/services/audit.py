"""Audit trail, comments and the account timeline. Audit entries are written by the services
that change things, inside their own transaction, through `record()`."""

from __future__ import annotations

import builtins
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from typing import Any

import sqlalchemy as sa

from postroom.domain.people import Actor
from postroom.errors import InvalidInput
from postroom.services.pages import Page
from postroom.storage.accounts import AccountRepository
from postroom.storage.audit import AuditEntry, AuditRepository, Comment, TimelineEvent
from postroom.storage.types import utcnow

MASK = "***"


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    """A dataclass as {dotted.field: plain value}; any field named password is masked."""
    if obj is None:
        return {}
    data = asdict(obj) if is_dataclass(obj) and not isinstance(obj, type) else dict(obj)
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, path + "."))
        elif "password" in key:
            out[path] = MASK if value else None
        else:
            out[path] = _plain(value)
    return out


def diff(before: Any, after: Any) -> dict[str, list[Any]]:
    """Field-level diff {field: [old, new]} of two dataclasses (either may be None)."""
    old, new = flatten(before), flatten(after)
    changes: dict[str, list[Any]] = {}
    for key in sorted(old.keys() | new.keys()):
        if key.endswith("password"):
            if new.get(key):  # a new password was given: say so, never what it was
                changes[key] = [old.get(key), MASK]
            continue
        if old.get(key) != new.get(key):
            changes[key] = [old.get(key), new.get(key)]
    return changes


class AuditService:
    def __init__(
        self, engine: sa.Engine, repo: AuditRepository, accounts: AccountRepository
    ) -> None:
        self._engine = engine
        self._repo = repo
        self._accounts = accounts

    def record(
        self,
        conn: sa.Connection,
        actor: Actor,
        action: str,
        entity_type: str,
        entity_id: int | None,
        changes: dict[str, Any],
        account_id: int | None = None,
    ) -> None:
        self._repo.add_audit(
            conn,
            at=utcnow(),
            actor=actor.email,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            account_id=account_id,
            changes=changes,
        )

    def list(
        self,
        actor: Actor,
        *,
        account_id: int | None = None,
        entity_type: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> Page[AuditEntry]:
        with self._engine.begin() as conn:
            if account_id is not None:
                self._check_read(conn, actor, account_id)
            elif not actor.is_admin:
                from postroom.errors import Forbidden

                raise Forbidden("only admins can read the whole audit trail")
            items, total = self._repo.list_audit(
                conn, account_id=account_id, entity_type=entity_type, offset=offset, limit=limit
            )
        return Page(items, total, offset, limit)

    def add_comment(self, actor: Actor, account_id: int, body: str) -> Comment:
        body = body.strip()
        if not body:
            raise InvalidInput(fields={"body": "is required"})
        if len(body) > 10_000:
            raise InvalidInput(fields={"body": "must be at most 10000 characters"})
        with self._engine.begin() as conn:
            self._check_read(conn, actor, account_id)
            comment = self._repo.add_comment(conn, account_id, actor.email, body, utcnow())
            self.record(
                conn,
                actor,
                "comment",
                "account",
                account_id,
                {"comment": [None, comment.id]},
                account_id,
            )
        return comment

    def comments(self, actor: Actor, account_id: int) -> builtins.list[Comment]:
        with self._engine.begin() as conn:
            self._check_read(conn, actor, account_id)
            return self._repo.list_comments(conn, account_id)

    def timeline(
        self, actor: Actor, account_id: int, limit: int = 100, before: datetime | None = None
    ) -> builtins.list[TimelineEvent]:
        with self._engine.begin() as conn:
            self._check_read(conn, actor, account_id)
            return self._repo.timeline(conn, account_id, min(max(limit, 1), 1000), before)

    def _check_read(self, conn: sa.Connection, actor: Actor, account_id: int) -> None:
        from postroom.errors import NotFound

        account = self._accounts.get(conn, account_id)
        if not actor.can_read(account.team_id):
            raise NotFound(f"account {account_id} does not exist")
