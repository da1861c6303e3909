"""The system log (seed 001 sys_log) and admin notifications."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from postroom.domain.people import Actor
from postroom.errors import InvalidInput, NotFound
from postroom.services.pages import Page
from postroom.storage.audit import AuditRepository, LogEntry, LogFilter, Notification
from postroom.storage.tables.core import accounts
from postroom.storage.types import utcnow

SOURCES = ("SMTP Auth", "IMAP Auth", "POP3 Auth", "Outgoing", "Incoming", "System")
LEVELS = ("debug", "info", "warning", "error")


class SystemLogService:
    def __init__(self, engine: sa.Engine, repo: AuditRepository, retention_days: int) -> None:
        self._engine = engine
        self._repo = repo
        self._retention = timedelta(days=retention_days)

    def write(
        self,
        source: str,
        level: str,
        message: str,
        *,
        account_id: int | None = None,
        user: str = "",
        action: str = "",
        transcript: list[dict[str, Any]] | None = None,
        conn: sa.Connection | None = None,
    ) -> int:
        """Append one entry; inside `conn`'s transaction when given. Transcripts must already
        be redacted (the protocols layer redacts at capture)."""
        if level not in LEVELS:
            raise InvalidInput(fields={"level": f"must be one of {', '.join(LEVELS)}"})
        values = {
            "created_at": utcnow(),
            "source": source,
            "level": level,
            "message": message,
            "account_id": account_id,
            "user": user,
            "action": action,
            "transcript": transcript,
        }
        if conn is not None:
            return self._repo.add_log(conn, **values)
        with self._engine.begin() as own:
            return self._repo.add_log(own, **values)

    def query(self, actor: Actor, flt: LogFilter) -> Page[LogEntry]:
        if flt.level and flt.level not in LEVELS:
            raise InvalidInput(fields={"level": f"must be one of {', '.join(LEVELS)}"})
        with self._engine.begin() as conn:
            items, total = self._repo.query_log(conn, flt, self._visible_accounts(conn, actor))
        return Page(items, total, flt.offset, flt.limit)

    def get(self, actor: Actor, log_id: int) -> LogEntry:
        with self._engine.begin() as conn:
            entry = self._repo.get_log(conn, log_id)
            visible = self._visible_accounts(conn, actor)
        if entry is None or (visible is not None and entry.account_id not in visible):
            raise NotFound(f"log entry {log_id} does not exist")
        return entry

    def purge(self) -> int:
        """Delete entries older than the retention setting; returns how many."""
        with self._engine.begin() as conn:
            return self._repo.purge_log(conn, utcnow() - self._retention)

    def notify(
        self,
        level: str,
        message: str,
        account_id: int | None = None,
        conn: sa.Connection | None = None,
    ) -> None:
        if conn is not None:
            self._repo.add_notification(
                conn, level=level, message=message, account_id=account_id, now=utcnow()
            )
            return
        with self._engine.begin() as own:
            self._repo.add_notification(
                own, level=level, message=message, account_id=account_id, now=utcnow()
            )

    def notifications(self, actor: Actor, unread_only: bool = False) -> list[Notification]:
        with self._engine.begin() as conn:
            items = self._repo.list_notifications(conn, unread_only)
            visible = self._visible_accounts(conn, actor)
        return [n for n in items if visible is None or n.account_id in visible]

    def mark_read(self, actor: Actor, notification_id: int) -> None:
        """Mark one notification read; only for callers who can see it (else NotFound)."""
        with self._engine.begin() as conn:
            visible = self._visible_accounts(conn, actor)
            found = self._repo.get_notification(conn, notification_id)
            if found is None or (visible is not None and found.account_id not in visible):
                raise NotFound(f"notification {notification_id} does not exist")
            self._repo.mark_notification_read(conn, notification_id, utcnow())

    @staticmethod
    def _visible_accounts(conn: sa.Connection, actor: Actor) -> list[int] | None:
        """Admins see every entry; others only entries of accounts they can read."""
        if actor.is_admin:
            return None
        rows = conn.execute(sa.select(accounts.c.id, accounts.c.team_id))
        return [r.id for r in rows if actor.can_read(r.team_id)]
