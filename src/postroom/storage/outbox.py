"""Outbox repository: messages and recipients, journals, and the accounts as the outbox sees
them. The queue operations (claim, results, leases, workers) live in storage/outbox_queue.py and
are inherited, so services hold one repository object.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from postroom.domain.accounts import AccountStatus, SendMode
from postroom.domain.outbox import (
    CANCELLABLE,
    RESENDABLE,
    AttemptView,
    MessageStatus,
    OutboxMessage,
    OutboxQuery,
    RecipientKind,
    RecipientStatus,
    RecipientView,
)
from postroom.domain.people import Actor, Role
from postroom.domain.routing import RouteCandidate, Sender
from postroom.errors import Conflict, NotFound
from postroom.storage.outbox_queue import QueueRepository
from postroom.storage.tables.core import (
    account_outgoing,
    account_work_locations,
    accounts,
    team_members,
    users,
)
from postroom.storage.tables.outbox import (
    outbox_attempts,
    outbox_bodies,
    outbox_messages,
    outbox_recipients,
)

M, R, A, B = outbox_messages, outbox_recipients, outbox_attempts, outbox_bodies
_SUMMARY = [c for c in M.c if c.name not in ("lease_owner", "lease_until")]


def _message(row: sa.Row[Any]) -> OutboxMessage:
    m = row._mapping
    return OutboxMessage(
        id=m["id"],
        message_id=m["message_id"],
        account_id=m["account_id"],
        status=MessageStatus(m["status"]),
        subject=m["subject"],
        envelope_from=m["envelope_from"],
        priority=m["priority"],
        attempts=m["attempts"],
        created_at=m["created_at"],
        expires_at=m["expires_at"],
        next_attempt_at=m["next_attempt_at"],
        sent_at=m["sent_at"],
        sender_user_id=m["sender_user_id"],
        idempotency_key=m["idempotency_key"],
        mode=SendMode(m["mode"]),
        size=m["size"],
        last_error=m["last_error"],
        created_by=m["created_by"],
    )


class OutboxRepository(QueueRepository):
    # -- submit --------------------------------------------------------------------------------

    def insert(
        self,
        conn: sa.Connection,
        values: dict[str, Any],
        recipients: Sequence[tuple[RecipientKind, str]],
    ) -> int | None:
        """Insert a message, its body and its recipients; None when the idempotency key is taken.

        `values` are the outbox_messages columns plus "raw", the bytes (stored in outbox_bodies,
        in the caller's transaction). The insert runs in a SAVEPOINT so a lost race on the
        unique key leaves the caller's transaction usable for reading the winner.
        """
        values = dict(values)
        raw = values.pop("raw")
        try:
            with conn.begin_nested():
                message_id: int = conn.execute(
                    sa.insert(M).values(**values).returning(M.c.id)
                ).scalar_one()
        except IntegrityError:
            if values.get("idempotency_key") and self.find_by_key(conn, values["idempotency_key"]):
                return None
            raise
        conn.execute(sa.insert(B).values(message_id=message_id, raw=raw))
        conn.execute(
            sa.insert(R),
            [
                {
                    "message_id": message_id,
                    "address": address,
                    "kind": kind.value,
                    "status": RecipientStatus.PENDING.value,
                }
                for kind, address in recipients
            ],
        )
        return message_id

    def insert_many(
        self,
        conn: sa.Connection,
        items: Sequence[tuple[dict[str, Any], Sequence[tuple[RecipientKind, str]]]],
    ) -> list[int]:
        """Bulk insert (no idempotency keys; `values` as for insert): one INSERT … RETURNING
        for the messages, one executemany each for the bodies and the recipients."""
        if not items:
            return []
        rows = conn.execute(
            sa.insert(M).returning(M.c.id, sort_by_parameter_order=True),
            [{k: v for k, v in values.items() if k != "raw"} for values, _ in items],
        ).all()
        ids = [r.id for r in rows]
        conn.execute(
            sa.insert(B),
            [
                {"message_id": mid, "raw": values["raw"]}
                for mid, (values, _) in zip(ids, items, strict=True)
            ],
        )
        conn.execute(
            sa.insert(R),
            [
                {
                    "message_id": mid,
                    "address": address,
                    "kind": kind.value,
                    "status": RecipientStatus.PENDING.value,
                }
                for mid, (_, recipients) in zip(ids, items, strict=True)
                for kind, address in recipients
            ],
        )
        return ids

    def find_by_key(self, conn: sa.Connection, key: str) -> OutboxMessage | None:
        row = conn.execute(sa.select(*_SUMMARY).where(M.c.idempotency_key == key)).first()
        return None if row is None else _message(row)

    # -- reads ---------------------------------------------------------------------------------

    def get(self, conn: sa.Connection, message_id: int, details: bool = True) -> OutboxMessage:
        row = conn.execute(sa.select(*_SUMMARY).where(M.c.id == message_id)).first()
        if row is None:
            raise NotFound(f"message {message_id} does not exist")
        message = _message(row)
        if not details:
            return message
        recipients = tuple(
            RecipientView(
                r.id,
                r.address,
                RecipientKind(r.kind),
                RecipientStatus(r.status),
                r.code,
                r.enhanced,
                r.text,
                r.updated_at,
            )
            for r in conn.execute(sa.select(R).where(R.c.message_id == message_id).order_by(R.c.id))
        )
        attempts = tuple(
            AttemptView(
                a.id,
                a.account_id,
                a.worker,
                a.started_at,
                a.outcome,
                a.code,
                a.detail,
                a.failover_from,
            )
            for a in conn.execute(
                sa.select(*[c for c in A.c if c.name != "transcript"])
                .where(A.c.message_id == message_id)
                .order_by(A.c.id)
            )
        )
        return replace(message, recipients=recipients, attempt_log=attempts)

    def summaries(self, conn: sa.Connection, ids: Sequence[int]) -> list[OutboxMessage]:
        """Messages by id (no recipients/attempts), in the order of `ids`."""
        found: dict[int, OutboxMessage] = {}
        for start in range(0, len(ids), 500):
            rows = conn.execute(sa.select(*_SUMMARY).where(M.c.id.in_(ids[start : start + 500])))
            found.update((r.id, _message(r)) for r in rows)
        return [found[i] for i in ids]

    def raw(self, conn: sa.Connection, message_id: int) -> bytes:
        raw = conn.execute(sa.select(B.c.raw).where(B.c.message_id == message_id)).scalar()
        if raw is None:
            raise NotFound(f"message {message_id} does not exist")
        return bytes(raw)

    def page(
        self, conn: sa.Connection, query: OutboxQuery, visible_teams: frozenset[int] | None
    ) -> tuple[list[OutboxMessage], int]:
        """One page (newest first) and the total. `visible_teams` None means everything."""
        where: list[sa.ColumnElement[bool]] = []
        if query.statuses:
            where.append(M.c.status.in_([s.value for s in query.statuses]))
        if query.account_id is not None:
            where.append(M.c.account_id == query.account_id)
        if query.since is not None:
            where.append(M.c.created_at >= query.since)
        if query.until is not None:
            where.append(M.c.created_at < query.until)
        if query.search:
            like = f"%{query.search.lower().replace('%', '').replace('_', '')}%"
            where.append(
                sa.or_(
                    sa.func.lower(M.c.subject).like(like),
                    M.c.id.in_(
                        sa.select(R.c.message_id).where(sa.func.lower(R.c.address).like(like))
                    ),
                )
            )
        if visible_teams is not None:
            where.append(
                M.c.account_id.in_(
                    sa.select(accounts.c.id).where(
                        sa.or_(accounts.c.team_id.is_(None), accounts.c.team_id.in_(visible_teams))
                    )
                )
            )
        total = conn.execute(sa.select(sa.func.count()).select_from(M).where(*where)).scalar_one()
        rows = conn.execute(
            sa.select(*_SUMMARY)
            .where(*where)
            .order_by(M.c.id.desc())
            .offset(query.offset)
            .limit(query.limit)
        ).all()
        return [_message(r) for r in rows], total

    def counts(self, conn: sa.Connection, account_id: int | None = None) -> dict[str, int]:
        """Messages per status (queue counters for the UI)."""
        stmt = sa.select(M.c.status, sa.func.count()).group_by(M.c.status)
        if account_id is not None:
            stmt = stmt.where(M.c.account_id == account_id)
        return {row[0]: row[1] for row in conn.execute(stmt)}

    def last_sent(self, conn: sa.Connection, account_id: int) -> OutboxMessage | None:
        """The account's most recently sent message (ix_outbox_messages_sent_at), or None."""
        row = conn.execute(
            sa.select(*_SUMMARY)
            .where(M.c.account_id == account_id, M.c.status == MessageStatus.SENT.value)
            .order_by(M.c.sent_at.desc())
            .limit(1)
        ).first()
        return None if row is None else _message(row)

    # -- journal actions -----------------------------------------------------------------------

    def cancel(self, conn: sa.Connection, message_id: int, now: datetime) -> None:
        done = conn.execute(
            sa.update(M)
            .where(M.c.id == message_id, M.c.status.in_([s.value for s in CANCELLABLE]))
            .values(status=MessageStatus.CANCELLED.value, next_attempt_at=None, updated_at=now)
        ).rowcount
        if not done:
            current = self.get(conn, message_id, details=False).status
            raise Conflict(
                f"message {message_id} is {current.value}; only queued or deferred "
                "messages can be cancelled"
            )

    def resend(
        self, conn: sa.Connection, message_id: int, now: datetime, expires_at: datetime
    ) -> None:
        """Queue a failed / cancelled / deferred message again, now, with a fresh lifetime.

        Only recipients that did not get it are retried; the bytes and Message-ID stay the same.
        """
        done = conn.execute(
            sa.update(M)
            .where(M.c.id == message_id, M.c.status.in_([s.value for s in RESENDABLE]))
            .values(
                status=MessageStatus.QUEUED.value,
                next_attempt_at=now,
                expires_at=expires_at,
                updated_at=now,
                last_error="",
            )
        ).rowcount
        if not done:
            current = self.get(conn, message_id, details=False).status
            raise Conflict(
                f"message {message_id} is {current.value}; only failed, cancelled "
                "or deferred messages can be resent"
            )
        conn.execute(
            sa.update(R)
            .where(R.c.message_id == message_id, R.c.status != RecipientStatus.SENT.value)
            .values(status=RecipientStatus.PENDING.value, updated_at=now)
        )

    # -- accounts as the outbox sees them ------------------------------------------------------

    def set_paused(self, conn: sa.Connection, account_id: int, paused: bool) -> None:
        done = conn.execute(
            sa.update(account_outgoing)
            .where(account_outgoing.c.account_id == account_id)
            .values(paused=paused)
        ).rowcount
        if not done:
            raise NotFound(f"account {account_id} has no outgoing part")

    def auth_failing_since(self, conn: sa.Connection, account_id: int) -> datetime | None:
        value: datetime | None = conn.execute(
            sa.select(account_outgoing.c.auth_failing_since).where(
                account_outgoing.c.account_id == account_id
            )
        ).scalar()
        return value

    def set_auth_failing(
        self, conn: sa.Connection, account_id: int, since: datetime | None
    ) -> None:
        conn.execute(
            sa.update(account_outgoing)
            .where(account_outgoing.c.account_id == account_id)
            .values(auth_failing_since=since)
        )

    def account_team(self, conn: sa.Connection, account_id: int) -> int | None:
        """The team of an account (None: system-wide)."""
        team_id: int | None = conn.execute(
            sa.select(accounts.c.team_id).where(accounts.c.id == account_id)
        ).scalar()
        return team_id

    def route_candidates(self, conn: sa.Connection) -> list[RouteCandidate]:
        """Every non-deleted account, shaped for routing (deleted ones can never be chosen)."""
        locations: dict[int, list[int]] = {}
        for account_id, location_id in conn.execute(sa.select(account_work_locations)):
            locations.setdefault(account_id, []).append(location_id)
        rows = conn.execute(
            sa.select(
                accounts.c.id,
                accounts.c.name,
                accounts.c.status,
                accounts.c.team_id,
                accounts.c.default_outgoing_scope,
                account_outgoing.c.account_id.label("o"),
            )
            .select_from(
                accounts.outerjoin(account_outgoing, account_outgoing.c.account_id == accounts.c.id)
            )
            .where(accounts.c.status != AccountStatus.DELETED.value)
        )
        return [
            RouteCandidate(
                r.id,
                r.name,
                AccountStatus(r.status),
                r.team_id,
                r.default_outgoing_scope is not None,
                r.o is not None,
                tuple(sorted(locations.get(r.id, ()))),
            )
            for r in rows
        ]

    def sender(self, conn: sa.Connection, user_id: int) -> tuple[Sender, Actor]:
        """The routing view of a user and the access they have."""
        row = conn.execute(
            sa.select(users.c.email, users.c.role, users.c.work_location_id).where(
                users.c.id == user_id
            )
        ).first()
        if row is None:
            raise NotFound(f"user {user_id} does not exist")
        teams = tuple(
            sorted(
                conn.execute(
                    sa.select(team_members.c.team_id).where(team_members.c.user_id == user_id)
                ).scalars()
            )
        )
        return (
            Sender(user_id, row.email, teams, row.work_location_id),
            Actor(user_id, row.email, Role(row.role), frozenset(teams)),
        )
