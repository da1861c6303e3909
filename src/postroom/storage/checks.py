"""Check history: one row per probe run (a saved account's, or unsaved form values').

The stored result is `CheckResult.to_dict()`; its transcript was redacted when it was captured
(protocols/transcript.py), so nothing here has to scrub secrets.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from postroom.domain.checks import CheckResult
from postroom.storage.tables.core import checks


@dataclass(frozen=True, slots=True)
class CheckRecord:
    """One stored check. `result` is the JSON form of the CheckResult (see CheckResult.to_dict)."""

    id: int
    account_id: int | None
    protocol: str
    ok: bool
    error_class: str | None
    created_at: datetime
    created_by: str
    result: dict[str, Any]


def _record(row: sa.Row[Any]) -> CheckRecord:
    return CheckRecord(
        id=row.id,
        account_id=row.account_id,
        protocol=row.protocol,
        ok=row.ok,
        error_class=row.error_class,
        created_at=row.created_at,
        created_by=row.created_by,
        result=row.result,
    )


class CheckRepository:
    def add(
        self,
        conn: sa.Connection,
        result: CheckResult,
        *,
        account_id: int | None,
        created_by: str,
        now: datetime,
    ) -> int:
        """Store one result; returns its id."""
        inserted = conn.execute(
            checks.insert()
            .values(
                account_id=account_id,
                protocol=result.protocol,
                ok=result.ok,
                error_class=result.error_class.value if result.error_class else None,
                created_at=now,
                created_by=created_by,
                result=result.to_dict(),
            )
            .returning(checks.c.id)
        )
        return int(inserted.scalar_one())

    def history(
        self, conn: sa.Connection, account_id: int, *, limit: int, before_id: int | None = None
    ) -> list[CheckRecord]:
        """The newest `limit` checks of an account (older than `before_id` when given)."""
        query = sa.select(checks).where(checks.c.account_id == account_id)
        if before_id is not None:
            query = query.where(checks.c.id < before_id)
        rows = conn.execute(query.order_by(checks.c.id.desc()).limit(limit))
        return [_record(row) for row in rows]
