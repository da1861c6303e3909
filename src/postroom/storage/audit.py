"""Audit entries, comments, the system log and notifications, and the timeline that merges them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from postroom.storage.tables.core import audit_entries, comments, notifications, system_log


@dataclass(frozen=True, slots=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: int | None
    account_id: int | None
    changes: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Comment:
    id: int
    account_id: int
    author: str
    body: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class LogEntry:
    id: int
    created_at: datetime
    source: str
    level: str
    action: str
    message: str
    account_id: int | None
    user: str
    transcript: list[dict[str, Any]] | None


@dataclass(frozen=True, slots=True)
class Notification:
    id: int
    created_at: datetime
    level: str
    message: str
    account_id: int | None
    read_at: datetime | None


@dataclass(frozen=True, slots=True)
class TimelineEvent:
    """One line of an account's timeline: kind is 'audit', 'comment' or 'log'."""

    at: datetime
    kind: str
    actor: str
    title: str
    detail: dict[str, Any]
    ref_id: int


@dataclass(frozen=True, slots=True)
class LogFilter:
    source: str | None = None
    level: str | None = None
    account_id: int | None = None
    user: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    search: str = ""
    offset: int = 0
    limit: int = 50


class AuditRepository:
    def add_audit(
        self,
        conn: sa.Connection,
        *,
        at: datetime,
        actor: str,
        action: str,
        entity_type: str,
        entity_id: int | None,
        account_id: int | None,
        changes: dict[str, Any],
    ) -> None:
        conn.execute(
            audit_entries.insert().values(
                at=at,
                actor=actor,
                action=action,
                entity_type=entity_type,
                entity_id=entity_id,
                account_id=account_id,
                changes=changes,
            )
        )

    def list_audit(
        self,
        conn: sa.Connection,
        *,
        account_id: int | None = None,
        entity_type: str | None = None,
        offset: int = 0,
        limit: int = 50,
    ) -> tuple[list[AuditEntry], int]:
        where = []
        if account_id is not None:
            where.append(audit_entries.c.account_id == account_id)
        if entity_type is not None:
            where.append(audit_entries.c.entity_type == entity_type)
        total = conn.execute(
            sa.select(sa.func.count()).select_from(audit_entries).where(*where)
        ).scalar_one()
        rows = conn.execute(
            sa.select(audit_entries)
            .where(*where)
            .order_by(audit_entries.c.id.desc())
            .offset(offset)
            .limit(limit)
        )
        return [AuditEntry(**r._mapping) for r in rows], total

    def add_comment(
        self, conn: sa.Connection, account_id: int, author: str, body: str, now: datetime
    ) -> Comment:
        cid = conn.execute(
            comments.insert()
            .values(account_id=account_id, author=author, body=body, created_at=now)
            .returning(comments.c.id)
        ).scalar_one()
        return Comment(cid, account_id, author, body, now)

    def list_comments(self, conn: sa.Connection, account_id: int) -> list[Comment]:
        rows = conn.execute(
            sa.select(comments)
            .where(comments.c.account_id == account_id)
            .order_by(comments.c.id.desc())
        )
        return [Comment(**r._mapping) for r in rows]

    def add_log(self, conn: sa.Connection, **values: Any) -> int:
        return int(
            conn.execute(
                system_log.insert().values(**values).returning(system_log.c.id)
            ).scalar_one()
        )

    def get_log(self, conn: sa.Connection, log_id: int) -> LogEntry | None:
        row = conn.execute(sa.select(system_log).where(system_log.c.id == log_id)).first()
        return None if row is None else LogEntry(**row._mapping)

    def query_log(
        self, conn: sa.Connection, flt: LogFilter, visible_accounts: list[int] | None
    ) -> tuple[list[LogEntry], int]:
        """Newest first. `visible_accounts` None: everything; else only those accounts' rows."""
        where: list[sa.ColumnElement[bool]] = []
        if flt.source:
            where.append(system_log.c.source == flt.source)
        if flt.level:
            where.append(system_log.c.level == flt.level)
        if flt.account_id is not None:
            where.append(system_log.c.account_id == flt.account_id)
        if flt.user:
            where.append(system_log.c.user == flt.user)
        if flt.since:
            where.append(system_log.c.created_at >= flt.since)
        if flt.until:
            where.append(system_log.c.created_at < flt.until)
        if flt.search:
            where.append(sa.func.lower(system_log.c.message).like(f"%{flt.search.lower()}%"))
        if visible_accounts is not None:
            where.append(system_log.c.account_id.in_(visible_accounts))
        total = conn.execute(
            sa.select(sa.func.count()).select_from(system_log).where(*where)
        ).scalar_one()
        cols = list(system_log.c)
        rows = conn.execute(
            sa.select(*cols)
            .where(*where)
            .order_by(system_log.c.id.desc())
            .offset(flt.offset)
            .limit(flt.limit)
        )
        return [LogEntry(**r._mapping) for r in rows], total

    def purge_log(self, conn: sa.Connection, before: datetime) -> int:
        return int(
            conn.execute(system_log.delete().where(system_log.c.created_at < before)).rowcount
        )

    def add_notification(
        self,
        conn: sa.Connection,
        *,
        level: str,
        message: str,
        account_id: int | None,
        now: datetime,
    ) -> None:
        conn.execute(
            notifications.insert().values(
                level=level, message=message, account_id=account_id, created_at=now
            )
        )

    def list_notifications(
        self, conn: sa.Connection, unread_only: bool, limit: int = 100
    ) -> list[Notification]:
        q = sa.select(notifications).order_by(notifications.c.id.desc()).limit(limit)
        if unread_only:
            q = q.where(notifications.c.read_at.is_(None))
        return [Notification(**r._mapping) for r in conn.execute(q)]

    def get_notification(self, conn: sa.Connection, notification_id: int) -> Notification | None:
        row = conn.execute(
            sa.select(notifications).where(notifications.c.id == notification_id)
        ).first()
        return None if row is None else Notification(**row._mapping)

    def mark_notification_read(
        self, conn: sa.Connection, notification_id: int, now: datetime
    ) -> None:
        conn.execute(
            notifications.update().where(notifications.c.id == notification_id).values(read_at=now)
        )

    def timeline(
        self, conn: sa.Connection, account_id: int, limit: int, before: datetime | None
    ) -> list[TimelineEvent]:
        """Audit, comments and log rows of one account, newest first, merged in Python.

        Each source is read with its own LIMIT, so the merge touches at most 3 * limit rows.
        """

        def bounded(col: Any) -> list[Any]:
            return [col < before] if before is not None else []

        events: list[TimelineEvent] = []
        for r in conn.execute(
            sa.select(audit_entries)
            .where(audit_entries.c.account_id == account_id, *bounded(audit_entries.c.at))
            .order_by(audit_entries.c.at.desc())
            .limit(limit)
        ):
            events.append(
                TimelineEvent(r.at, "audit", r.actor, r.action, {"changes": r.changes}, r.id)
            )
        for r in conn.execute(
            sa.select(comments)
            .where(comments.c.account_id == account_id, *bounded(comments.c.created_at))
            .order_by(comments.c.created_at.desc())
            .limit(limit)
        ):
            events.append(
                TimelineEvent(r.created_at, "comment", r.author, "comment", {"body": r.body}, r.id)
            )
        for r in conn.execute(
            sa.select(
                system_log.c.id,
                system_log.c.created_at,
                system_log.c.source,
                system_log.c.level,
                system_log.c.message,
                system_log.c.user,
                system_log.c.action,
            )
            .where(system_log.c.account_id == account_id, *bounded(system_log.c.created_at))
            .order_by(system_log.c.created_at.desc())
            .limit(limit)
        ):
            events.append(
                TimelineEvent(
                    r.created_at,
                    "log",
                    r.user or "system",
                    r.source,
                    {"level": r.level, "message": r.message, "action": r.action},
                    r.id,
                )
            )
        events.sort(key=lambda e: e.at, reverse=True)
        return events[:limit]
