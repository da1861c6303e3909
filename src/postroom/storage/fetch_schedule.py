"""The fetch schedule and health columns of account_incoming: one fetcher per account at a time.

The claim of due accounts is one `UPDATE … WHERE account_id IN (SELECT … [FOR UPDATE SKIP LOCKED])
RETURNING`, the dialect branch kept in `_lockable`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from postroom.domain.accounts import AccountStatus
from postroom.domain.inbox import Health
from postroom.errors import NotFound
from postroom.storage.tables.core import account_incoming, accounts

_ai = account_incoming.c


def _lockable(conn: sa.Connection, select: sa.Select[Any]) -> sa.Select[Any]:
    """Row locks that other claimers skip, on PostgreSQL; SQLite serialises writers anyway
    (BEGIN IMMEDIATE) and SQLAlchemy would silently drop the clause there."""
    if conn.dialect.name == "postgresql":
        return select.with_for_update(skip_locked=True)
    return select


class FetchScheduleRepository:
    """Leases, schedule and health on account_incoming (one fetcher per account at a time)."""

    def claim_due(
        self, conn: sa.Connection, owner: str, now: datetime, until: datetime, limit: int
    ) -> list[int]:
        """Lease up to `limit` accounts that are due: active, incoming enabled, not leased."""
        due = _lockable(
            conn,
            sa.select(_ai.account_id)
            .where(
                _ai.enabled.is_(True),
                _ai.account_id.in_(
                    sa.select(accounts.c.id).where(accounts.c.status == AccountStatus.ACTIVE.value)
                ),
                sa.or_(_ai.next_fetch_at.is_(None), _ai.next_fetch_at <= now),
                sa.or_(_ai.lease_until.is_(None), _ai.lease_until < now),
            )
            .order_by(sa.nulls_first(_ai.next_fetch_at.asc()), _ai.account_id)
            .limit(limit),
        )
        stmt = (
            sa.update(account_incoming)
            .where(_ai.account_id.in_(due))
            .values(lease_owner=owner, lease_until=until)
            .returning(_ai.account_id)
        )
        return sorted(conn.execute(stmt).scalars())

    def acquire(
        self, conn: sa.Connection, account_id: int, owner: str, now: datetime, until: datetime
    ) -> bool:
        """Lease one account now (manual fetch), unless another fetcher holds it."""
        stmt = (
            sa.update(account_incoming)
            .where(
                _ai.account_id == account_id,
                sa.or_(_ai.lease_until.is_(None), _ai.lease_until < now, _ai.lease_owner == owner),
            )
            .values(lease_owner=owner, lease_until=until)
        )
        return conn.execute(stmt).rowcount == 1

    def renew(self, conn: sa.Connection, account_id: int, owner: str, until: datetime) -> bool:
        """Extend our lease; False when it was lost (expired and taken by another fetcher)."""
        stmt = (
            sa.update(account_incoming)
            .where(_ai.account_id == account_id, _ai.lease_owner == owner)
            .values(lease_until=until)
        )
        return conn.execute(stmt).rowcount == 1

    def release(
        self, conn: sa.Connection, account_id: int, owner: str, next_fetch_at: datetime | None
    ) -> None:
        values: dict[str, Any] = {"lease_owner": None, "lease_until": None}
        if next_fetch_at is not None:
            values["next_fetch_at"] = next_fetch_at
        conn.execute(
            sa.update(account_incoming)
            .where(_ai.account_id == account_id, _ai.lease_owner == owner)
            .values(**values)
        )

    def health(self, conn: sa.Connection, account_id: int) -> Health:
        row = conn.execute(
            sa.select(
                _ai.consecutive_failures, _ai.consecutive_auth_failures, _ai.fetch_failing_since
            ).where(_ai.account_id == account_id)
        ).first()
        if row is None:
            raise NotFound(f"account {account_id} has no incoming server")
        return Health(row[0], row[1], row[2])

    def record_run(
        self,
        conn: sa.Connection,
        account_id: int,
        health: Health,
        *,
        now: datetime,
        ok: bool,
        count: int,
        error: str,
        disable: bool,
    ) -> None:
        values: dict[str, Any] = {
            "last_fetch_at": now,
            "consecutive_failures": health.consecutive_failures,
            "consecutive_auth_failures": health.consecutive_auth_failures,
            "fetch_failing_since": health.failing_since,
            "last_fetch_count": count,
            "last_fetch_error": error,
        }
        if ok:
            values["last_fetch_ok_at"] = now
        if disable:
            values["enabled"] = False
        conn.execute(
            sa.update(account_incoming).where(_ai.account_id == account_id).values(**values)
        )

    def status(self, conn: sa.Connection, account_id: int) -> dict[str, Any]:
        """The fetch columns of one account (for health views)."""
        row = conn.execute(
            sa.select(
                _ai.enabled,
                _ai.next_fetch_at,
                _ai.last_fetch_at,
                _ai.last_fetch_ok_at,
                _ai.fetch_failing_since,
                _ai.consecutive_failures,
                _ai.consecutive_auth_failures,
                _ai.last_fetch_count,
                _ai.last_fetch_error,
            ).where(_ai.account_id == account_id)
        ).first()
        if row is None:
            raise NotFound(f"account {account_id} has no incoming server")
        return dict(row._mapping)
