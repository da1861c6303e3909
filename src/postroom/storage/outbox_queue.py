"""The queue half of the outbox repository: the lease-based claim, results, leases, workers.

Delivery is at-least-once. The claim hands each due message to exactly one worker under a lease;
a lease that runs out (worker killed) makes the message claimable again, and the re-send reuses
the stored bytes with their Message-ID. Results are written as the server answers (a few per
transaction, see services/results.Recorder), never per batch afterwards, so a crash re-sends
at most the messages in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from postroom.domain.outbox import (
    CLAIMABLE,
    AttemptRecord,
    ClaimedMessage,
    Finished,
    MessageStatus,
    PendingRecipient,
    RecipientStatus,
)
from postroom.errors import Conflict
from postroom.storage.bulk import BulkInsert, BulkUpdate
from postroom.storage.tables.core import (
    account_outgoing,
    system_log,
)
from postroom.storage.tables.outbox import (
    outbox_attempts,
    outbox_bodies,
    outbox_messages,
    outbox_recipients,
    workers,
)
from postroom.storage.types import UtcDateTime

M, R, A, B = outbox_messages, outbox_recipients, outbox_attempts, outbox_bodies
_OPEN = (RecipientStatus.PENDING.value, RecipientStatus.DEFERRED.value)
_CLAIMED = (
    M.c.id,
    M.c.message_id,
    M.c.account_id,
    M.c.envelope_from,
    M.c.attempts,
    M.c.expires_at,
    M.c.sender_user_id,
)


def _attempt_row(message_id: int, attempt: AttemptRecord) -> tuple[Any, ...]:
    """The row of `_ATTEMPT_INSERT` for an attempt."""
    return (
        message_id,
        attempt.account_id,
        attempt.worker,
        attempt.started_at,
        attempt.outcome,
        attempt.code,
        attempt.detail[:2000],
        attempt.failover_from,
        attempt.transcript,
    )


# Built once: compiling a statement per message costs more than the database round trip.
# _FINISH settles what did not go out (deferred, failed), one row per parameter set.
_FINISH = (
    sa.update(M)
    .where(M.c.id == sa.bindparam("m_id"), M.c.status == MessageStatus.SENDING.value)
    .values(
        status=sa.bindparam("m_status"),
        lease_owner=None,
        lease_until=None,
        next_attempt_at=sa.bindparam("m_next"),
        updated_at=sa.bindparam("m_now"),
        last_error=sa.bindparam("m_error"),
        sent_at=None,
    )
)
_BODIES = sa.select(B.c.message_id, B.c.raw).where(
    B.c.message_id.in_(sa.bindparam("ids", expanding=True))
)
_OPEN_RECIPIENTS = (
    sa.select(R.c.id, R.c.message_id, R.c.address)
    .where(R.c.message_id.in_(sa.bindparam("ids", expanding=True)), R.c.status.in_(_OPEN))
    .order_by(R.c.id)
)
# A success is written whenever the message is still 'sending', whoever holds the lease now.
_SENT = (
    sa.update(M)
    .where(
        M.c.id.in_(sa.bindparam("ids", expanding=True)), M.c.status == MessageStatus.SENDING.value
    )
    .values(
        status=MessageStatus.SENT.value,
        lease_owner=None,
        lease_until=None,
        next_attempt_at=None,
        updated_at=sa.bindparam("now"),
        last_error="",
        sent_at=sa.bindparam("now"),
    )
    .returning(M.c.id)
)
_STATE = (
    sa.select(M.c.id, M.c.status, M.c.lease_owner)
    .where(M.c.id.in_(sa.bindparam("ids", expanding=True)))
    .with_for_update()
)
# The per-row writes of finish_many: plain tuples, no per-row SQLAlchemy work (storage/bulk.py).
_ATTEMPT_INSERT = BulkInsert(
    A,
    [
        "message_id",
        "account_id",
        "worker",
        "started_at",
        "outcome",
        "code",
        "detail",
        "failover_from",
        "transcript",
    ],
)
_LOG_INSERT = BulkInsert(
    system_log,
    ["created_at", "source", "level", "message", "account_id", "user", "action", "transcript"],
)
_RECIPIENT_UPDATE = BulkUpdate(R, ["status", "code", "enhanced", "text", "updated_at"], "id")


def _due_arm(status: str, due: sa.ColumnElement[bool], locking: bool) -> sa.Select[Any]:
    """The first :limit due rows of one status, in claim order.

    One status at a time walks ix_outbox_messages_claim (status, priority, next_attempt_at,
    and the rowid after them) in order and stops after :limit rows; a single OR over the
    statuses made SQLite collect and sort every due row of the queue on each claim, so a claim
    cost grew with the queue (measured: 4 ms per claim of 250 with 20,000 queued).
    """
    paused = sa.select(account_outgoing.c.account_id).where(account_outgoing.c.paused == sa.true())
    arm = (
        sa.select(M.c.id, M.c.priority, M.c.next_attempt_at)
        .where(M.c.status == status, due, M.c.account_id.not_in(paused))
        .order_by(M.c.priority, M.c.next_attempt_at, M.c.id)
        .limit(sa.bindparam("limit"))
    )
    if locking:
        arm = arm.with_for_update(skip_locked=True, of=M)
    # Wrapped: SQLite takes no ORDER BY / LIMIT on a bare member of a compound SELECT.
    return sa.select(arm.subquery())


def _claim_statement(locking: bool) -> sa.Update:
    """The claim (see QueueRepository.claim) with :now, :limit, :owner and :until bound."""
    now = sa.bindparam("now", type_=UtcDateTime)
    arms = [_due_arm(s.value, M.c.next_attempt_at <= now, locking) for s in CLAIMABLE]
    arms.append(_due_arm(MessageStatus.SENDING.value, M.c.lease_until < now, locking))
    due = sa.union_all(*arms).subquery("due")
    pick = (
        sa.select(due.c.id)
        .order_by(due.c.priority, due.c.next_attempt_at, due.c.id)
        .limit(sa.bindparam("limit"))
    )
    return (
        sa.update(M)
        .where(M.c.id.in_(pick.scalar_subquery()))
        .values(
            status=MessageStatus.SENDING.value,
            lease_owner=sa.bindparam("owner"),
            lease_until=sa.bindparam("until", type_=UtcDateTime),
            attempts=M.c.attempts + 1,
            updated_at=now,
        )
        .returning(*_CLAIMED)
    )


# Built once (compiling per claim cost more than the claim); FOR UPDATE SKIP LOCKED on PostgreSQL.
_CLAIM, _CLAIM_LOCKING = _claim_statement(locking=False), _claim_statement(locking=True)


class QueueRepository:
    # -- the queue -----------------------------------------------------------------------------

    def claim(
        self, conn: sa.Connection, owner: str, limit: int, lease_s: float, now: datetime
    ) -> list[ClaimedMessage]:
        """Lease up to `limit` due messages to `owner` in ONE statement; returns them (their
        bodies and open recipients are read afterwards, one SELECT … IN each).

        Due: queued/deferred with next_attempt_at <= now, or sending with an expired lease (its
        worker died; the message may have gone out, so this is where at-least-once comes from).
        Paused accounts are skipped. Highest priority first, then the longest due, then FIFO.
        Each kind of due row is picked by its own arm (see `_due_arm`), so a claim reads about
        `limit` rows per arm whatever the length of the queue. On PostgreSQL the arms add FOR
        UPDATE SKIP LOCKED so concurrent workers take disjoint rows without waiting; SQLite has
        no row locks (and SQLAlchemy would silently drop the clause) but BEGIN IMMEDIATE
        serialises writers. This is the only dialect branch of the queue.
        """
        claim = _CLAIM_LOCKING if conn.dialect.name == "postgresql" else _CLAIM
        params = {"now": now, "limit": limit, "owner": owner}
        rows = conn.execute(claim, {**params, "until": now + timedelta(seconds=lease_s)}).all()
        return self._claimed(conn, sorted(rows, key=lambda r: r.id))

    def leased(self, conn: sa.Connection, message_id: int, owner: str) -> ClaimedMessage:
        """A message already leased to `owner` (immediate mode stores it leased)."""
        row = conn.execute(
            sa.select(*_CLAIMED).where(M.c.id == message_id, M.c.lease_owner == owner)
        ).first()
        if row is None:
            raise Conflict(f"message {message_id} is not leased to {owner}")
        return self._claimed(conn, [row])[0]

    def _claimed(self, conn: sa.Connection, rows: Sequence[Any]) -> list[ClaimedMessage]:
        """The claimed rows with their bodies and the recipients still to be served (pending or
        deferred). The bodies are read here, not returned by the claim, so the claim's UPDATE
        touches only the small queue row."""
        pending: dict[int, list[PendingRecipient]] = {}
        bodies: dict[int, bytes] = {}
        for start in range(0, len(rows), 500):
            ids = [r.id for r in rows[start : start + 500]]
            bodies.update((b.message_id, bytes(b.raw)) for b in conn.execute(_BODIES, {"ids": ids}))
            for r in conn.execute(_OPEN_RECIPIENTS, {"ids": ids}):
                pending.setdefault(r.message_id, []).append(PendingRecipient(r.id, r.address))
        return [
            ClaimedMessage(
                r.id,
                r.message_id,
                r.account_id,
                r.envelope_from,
                bodies[r.id],
                r.attempts,
                r.expires_at,
                r.sender_user_id,
                tuple(pending.get(r.id, ())),
            )
            for r in rows
        ]

    def finish_many(
        self, conn: sa.Connection, items: Sequence[Finished], now: datetime
    ) -> list[bool]:
        """Write settled attempts; per item, False when its owner no longer held the lease.

        A success is written even if the lease was lost meanwhile: the server took the message,
        and saying otherwise would only cause another duplicate. This is delivery's hot path,
        so it runs prepared statements with executemany: a handful of statements per group.
        The system-log rows (source "Outgoing", with account_id: the account's timeline) are
        the same rows SystemLogService.write makes, inserted in bulk here.
        """
        if conn.dialect.name == "postgresql":
            # Don't wait for the WAL flush: a database crash may forget the last few results,
            # and those messages, still 'sending' under their lease, are simply re-sent with
            # the same Message-ID - at-least-once holds, and the commit no longer costs an
            # fsync per message. (SQLite runs with synchronous=NORMAL, the same trade-off.)
            conn.exec_driver_sql("SET LOCAL synchronous_commit TO OFF")
        # Successes (the bulk): one UPDATE … RETURNING says which were still 'sending'.
        sent = [i.message_id for i in items if i.status is MessageStatus.SENT]
        ok = set(conn.execute(_SENT, {"ids": sent, "now": now}).scalars()) if sent else set()
        others = [i for i in items if i.status is not MessageStatus.SENT]
        if others:
            # Anything else needs the lease still held by its owner: one read (row-locked on
            # PostgreSQL; SQLite's BEGIN IMMEDIATE already excludes other writers).
            state = {
                r.id: (r.status, r.lease_owner)
                for r in conn.execute(_STATE, {"ids": [i.message_id for i in others]})
            }
            ours = [
                i
                for i in others
                if state.get(i.message_id) == (MessageStatus.SENDING.value, i.owner)
            ]
            if ours:
                conn.execute(
                    _FINISH,
                    [
                        {
                            "m_id": i.message_id,
                            "m_status": i.status.value,
                            "m_next": i.next_attempt_at,
                            "m_now": now,
                            "m_error": i.attempt.detail,
                        }
                        for i in ours
                    ],
                )
            ok.update(i.message_id for i in ours)
        written = [i.message_id in ok for i in items]
        done = [item for item, w in zip(items, written, strict=True) if w]
        _RECIPIENT_UPDATE.execute(
            conn,
            [
                (u.status.value, u.code, u.enhanced, u.text[:2000], now, u.id)
                for item in done
                for u in item.recipients
            ],
        )
        _ATTEMPT_INSERT.execute(conn, [_attempt_row(i.message_id, i.attempt) for i in done])
        _LOG_INSERT.execute(
            conn,
            [
                (
                    now,
                    "Outgoing",
                    i.log_level,
                    i.log_message,
                    i.attempt.account_id,
                    "",
                    f"message_{i.status.value}",
                    i.log_transcript,
                )
                for i in done
            ],
        )
        return written

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
