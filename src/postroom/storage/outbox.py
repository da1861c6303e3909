"""Outbox repository: messages, recipients, attempts, the lease-based claim, worker heartbeats.

Delivery is at-least-once. The claim hands each due message to exactly one worker under a lease;
a lease that runs out (worker killed) makes the message claimable again, and the re-send reuses
the stored bytes with their Message-ID. A result is written per message right after the server
answered, never per batch afterwards, so a crash re-sends at most the messages in flight.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from postroom.domain.accounts import AccountStatus, SendMode
from postroom.domain.outbox import (
    CANCELLABLE,
    CLAIMABLE,
    RESENDABLE,
    AttemptRecord,
    AttemptView,
    ClaimedMessage,
    MessageStatus,
    OutboxMessage,
    OutboxQuery,
    PendingRecipient,
    RecipientKind,
    RecipientStatus,
    RecipientUpdate,
    RecipientView,
)
from postroom.domain.people import Actor, Role
from postroom.domain.routing import RouteCandidate, Sender
from postroom.errors import Conflict, NotFound
from postroom.storage.tables.core import (
    account_outgoing,
    account_work_locations,
    accounts,
    team_members,
    users,
)
from postroom.storage.tables.outbox import (
    outbox_attempts,
    outbox_messages,
    outbox_recipients,
    workers,
)

M, R, A = outbox_messages, outbox_recipients, outbox_attempts
_OPEN = (RecipientStatus.PENDING.value, RecipientStatus.DEFERRED.value)
_SUMMARY = [c for c in M.c if c.name not in ("raw", "lease_owner", "lease_until")]
_CLAIMED = (
    M.c.id,
    M.c.message_id,
    M.c.account_id,
    M.c.envelope_from,
    M.c.raw,
    M.c.attempts,
    M.c.expires_at,
    M.c.sender_user_id,
)


def _finish(*guards: sa.ColumnElement[bool]) -> sa.Update:
    return (
        sa.update(M)
        .where(M.c.id == sa.bindparam("m_id"), M.c.status == MessageStatus.SENDING.value, *guards)
        .values(
            status=sa.bindparam("m_status"),
            lease_owner=None,
            lease_until=None,
            next_attempt_at=sa.bindparam("m_next"),
            updated_at=sa.bindparam("m_now"),
            last_error=sa.bindparam("m_error"),
            sent_at=sa.bindparam("m_sent_at"),
        )
    )


# Built once: compiling a statement per message costs more than the database round trip.
_FINISH_SENT = _finish()
_FINISH_OTHER = _finish(M.c.lease_owner == sa.bindparam("m_owner"))
_RECIPIENT_UPDATE = (
    sa.update(R)
    .where(R.c.id == sa.bindparam("r_id"))
    .values(
        status=sa.bindparam("r_status"),
        code=sa.bindparam("r_code"),
        enhanced=sa.bindparam("r_enhanced"),
        text=sa.bindparam("r_text"),
        updated_at=sa.bindparam("r_now"),
    )
)


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


class OutboxRepository:
    # -- submit --------------------------------------------------------------------------------

    def insert(
        self,
        conn: sa.Connection,
        values: dict[str, Any],
        recipients: Sequence[tuple[RecipientKind, str]],
    ) -> int | None:
        """Insert a message and its recipients; None when the idempotency key is taken.

        The insert runs in a SAVEPOINT so a lost race on the unique key leaves the caller's
        transaction usable for reading the winner.
        """
        try:
            with conn.begin_nested():
                message_id: int = conn.execute(
                    sa.insert(M).values(**values).returning(M.c.id)
                ).scalar_one()
        except IntegrityError:
            if values.get("idempotency_key") and self.find_by_key(conn, values["idempotency_key"]):
                return None
            raise
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
        """Bulk insert (no idempotency keys): one INSERT … RETURNING for the messages."""
        if not items:
            return []
        rows = conn.execute(
            sa.insert(M).returning(M.c.id, sort_by_parameter_order=True),
            [values for values, _ in items],
        ).all()
        ids = [r.id for r in rows]
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
        raw = conn.execute(sa.select(M.c.raw).where(M.c.id == message_id)).scalar()
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

    # -- the queue -----------------------------------------------------------------------------

    def claim(
        self, conn: sa.Connection, owner: str, limit: int, lease_s: float, now: datetime
    ) -> list[ClaimedMessage]:
        """Lease up to `limit` due messages to `owner` in ONE statement; returns them.

        Due: queued/deferred with next_attempt_at <= now, or sending with an expired lease (its
        worker died; the message may have gone out, so this is where at-least-once comes from).
        Paused accounts are skipped. On PostgreSQL the inner SELECT adds FOR UPDATE SKIP LOCKED
        so concurrent workers take disjoint rows without waiting; SQLite has no row locks (and
        SQLAlchemy would silently drop the clause) but BEGIN IMMEDIATE serialises writers.
        This is the only dialect branch of the queue.
        """
        paused = sa.select(account_outgoing.c.account_id).where(
            account_outgoing.c.paused == sa.true()
        )
        due = sa.or_(
            sa.and_(M.c.status.in_([s.value for s in CLAIMABLE]), M.c.next_attempt_at <= now),
            sa.and_(M.c.status == MessageStatus.SENDING.value, M.c.lease_until < now),
        )
        pick = (
            sa.select(M.c.id)
            .where(due, M.c.account_id.not_in(paused))
            .order_by(M.c.priority, M.c.id)
            .limit(limit)
        )
        if conn.dialect.name == "postgresql":
            pick = pick.with_for_update(skip_locked=True, of=M)
        rows = conn.execute(
            sa.update(M)
            .where(M.c.id.in_(pick.scalar_subquery()))
            .values(
                status=MessageStatus.SENDING.value,
                lease_owner=owner,
                lease_until=now + timedelta(seconds=lease_s),
                attempts=M.c.attempts + 1,
                updated_at=now,
            )
            .returning(*_CLAIMED)
        ).all()
        return sorted(self._with_recipients(conn, self._claimed(rows)), key=lambda c: c.id)

    def leased(self, conn: sa.Connection, message_id: int, owner: str) -> ClaimedMessage:
        """A message already leased to `owner` (immediate mode stores it leased)."""
        row = conn.execute(
            sa.select(*_CLAIMED).where(M.c.id == message_id, M.c.lease_owner == owner)
        ).first()
        if row is None:
            raise Conflict(f"message {message_id} is not leased to {owner}")
        return self._with_recipients(conn, self._claimed([row]))[0]

    def _claimed(self, rows: Sequence[Any]) -> list[ClaimedMessage]:
        return [
            ClaimedMessage(
                r.id,
                r.message_id,
                r.account_id,
                r.envelope_from,
                bytes(r.raw),
                r.attempts,
                r.expires_at,
                r.sender_user_id,
                (),
            )
            for r in rows
        ]

    def _with_recipients(
        self, conn: sa.Connection, claimed: list[ClaimedMessage]
    ) -> list[ClaimedMessage]:
        """Attach the recipients still to be served (pending or deferred) to each message."""
        ids = [c.id for c in claimed]
        out: dict[int, list[PendingRecipient]] = {}
        for chunk_start in range(0, len(ids), 500):
            chunk = ids[chunk_start : chunk_start + 500]
            for r in conn.execute(
                sa.select(R.c.id, R.c.message_id, R.c.address)
                .where(R.c.message_id.in_(chunk), R.c.status.in_(_OPEN))
                .order_by(R.c.id)
            ):
                out.setdefault(r.message_id, []).append(PendingRecipient(r.id, r.address))
        return [replace(c, recipients=tuple(out.get(c.id, ()))) for c in claimed]

    def finish(
        self,
        conn: sa.Connection,
        message_id: int,
        owner: str,
        *,
        status: MessageStatus,
        recipients: Iterable[RecipientUpdate],
        attempt: AttemptRecord,
        now: datetime,
        next_attempt_at: datetime | None = None,
        last_error: str = "",
    ) -> bool:
        """Record one attempt's outcome. Returns False when `owner` no longer holds the lease.

        A success is written even if the lease was lost meanwhile: the server took the message,
        and saying otherwise would only cause another duplicate. This is the hot path of
        delivery (one call per message), so it runs prepared statements with parameters.
        """
        params = {
            "m_id": message_id,
            "m_owner": owner,
            "m_status": status.value,
            "m_next": next_attempt_at,
            "m_now": now,
            "m_error": last_error,
            "m_sent_at": now if status is MessageStatus.SENT else None,
        }
        stmt = _FINISH_SENT if status is MessageStatus.SENT else _FINISH_OTHER
        if conn.execute(stmt, params).rowcount == 0:
            return False
        rows = [
            {
                "r_id": u.id,
                "r_status": u.status.value,
                "r_code": u.code,
                "r_enhanced": u.enhanced,
                "r_text": u.text[:2000],
                "r_now": now,
            }
            for u in recipients
        ]
        if rows:
            conn.execute(_RECIPIENT_UPDATE, rows)
        self.add_attempt(conn, message_id, attempt)
        return True

    def add_attempt(self, conn: sa.Connection, message_id: int, attempt: AttemptRecord) -> None:
        conn.execute(
            sa.insert(A),
            {
                "message_id": message_id,
                "account_id": attempt.account_id,
                "worker": attempt.worker,
                "started_at": attempt.started_at,
                "outcome": attempt.outcome,
                "code": attempt.code,
                "detail": attempt.detail[:2000],
                "failover_from": attempt.failover_from,
                "transcript": attempt.transcript,
            },
        )

    def release(
        self,
        conn: sa.Connection,
        ids: Sequence[int],
        owner: str,
        now: datetime,
        next_attempt_at: datetime | None = None,
        *,
        undo_attempt: bool = True,
    ) -> int:
        """Give leased messages back untouched (shutdown, rate limit): nothing was sent."""
        if not ids:
            return 0
        values: dict[str, Any] = {
            "status": sa.case(
                (M.c.attempts > 1, MessageStatus.DEFERRED.value), else_=MessageStatus.QUEUED.value
            ),
            "lease_owner": None,
            "lease_until": None,
            "updated_at": now,
            "next_attempt_at": next_attempt_at or now,
        }
        if undo_attempt:
            values["attempts"] = M.c.attempts - 1
        return int(
            conn.execute(
                sa.update(M)
                .where(
                    M.c.id.in_(ids),
                    M.c.lease_owner == owner,
                    M.c.status == MessageStatus.SENDING.value,
                )
                .values(**values)
            ).rowcount
        )

    def release_all(self, conn: sa.Connection, owner: str, now: datetime) -> int:
        """Release every lease `owner` still holds (graceful stop)."""
        ids = list(
            conn.execute(
                sa.select(M.c.id).where(
                    M.c.lease_owner == owner, M.c.status == MessageStatus.SENDING.value
                )
            ).scalars()
        )
        return self.release(conn, ids, owner, now)

    def extend_leases(self, conn: sa.Connection, owner: str, until: datetime) -> int:
        return int(
            conn.execute(
                sa.update(M)
                .where(M.c.lease_owner == owner, M.c.status == MessageStatus.SENDING.value)
                .values(lease_until=until)
            ).rowcount
        )

    def postpone_account(self, conn: sa.Connection, account_id: int, until: datetime) -> int:
        """Move every waiting message of an account to `until` at the earliest (auth failing)."""
        return int(
            conn.execute(
                sa.update(M)
                .where(
                    M.c.account_id == account_id,
                    M.c.status.in_([s.value for s in CLAIMABLE]),
                    M.c.next_attempt_at < until,
                )
                .values(next_attempt_at=until)
            ).rowcount
        )

    def sent_since(self, conn: sa.Connection, account_id: int, since: datetime) -> list[datetime]:
        """Send times of the account's messages since `since`, oldest first (rate limit)."""
        return list(
            conn.execute(
                sa.select(A.c.started_at)
                .where(
                    A.c.account_id == account_id,
                    A.c.started_at >= since,
                    A.c.outcome != "rate_limited",
                )
                .order_by(A.c.started_at)
            ).scalars()
        )

    def last_attempt_at(
        self, conn: sa.Connection, account_id: int, outcome: str
    ) -> datetime | None:
        value: datetime | None = conn.execute(
            sa.select(sa.func.max(A.c.started_at)).where(
                A.c.account_id == account_id, A.c.outcome == outcome
            )
        ).scalar()
        return value

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

    # -- workers -------------------------------------------------------------------------------

    def heartbeat(
        self,
        conn: sa.Connection,
        name: str,
        hostname: str,
        pid: int,
        now: datetime,
        delivered: int = 0,
    ) -> None:
        done = conn.execute(
            sa.update(workers)
            .where(workers.c.name == name)
            .values(
                heartbeat_at=now, hostname=hostname, pid=pid, stopped_at=None, delivered=delivered
            )
        ).rowcount
        if not done:
            conn.execute(
                sa.insert(workers).values(
                    name=name,
                    hostname=hostname,
                    pid=pid,
                    started_at=now,
                    heartbeat_at=now,
                    delivered=delivered,
                )
            )

    def worker_stopped(self, conn: sa.Connection, name: str, now: datetime) -> None:
        conn.execute(sa.update(workers).where(workers.c.name == name).values(stopped_at=now))

    def list_workers(self, conn: sa.Connection) -> list[dict[str, Any]]:
        return [dict(r._mapping) for r in conn.execute(sa.select(workers).order_by(workers.c.name))]
