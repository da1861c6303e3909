"""Settling one delivery attempt and committing it: recipients, message status, retry time,
attempt log row and system-log row ("Outgoing", with account_id: the account timeline).

The delivery service decides *what happened*; this module decides *what it means* (reply class
→ recipient status → message status → retry decision), per message right after the server's
answer, and commits it within a few milliseconds in a small group (see Recorder).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from postroom.domain.accounts import Account
from postroom.domain.outbox import (
    AttemptRecord,
    ClaimedMessage,
    Finished,
    MessageStatus,
    RecipientStatus,
    RecipientUpdate,
    RetryPolicy,
    settle,
)
from postroom.protocols.transcript import Transcript
from postroom.storage.outbox import OutboxRepository
from postroom.storage.types import utcnow

_LEVEL = {MessageStatus.SENT: "info", MessageStatus.DEFERRED: "warning"}


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """One message after one attempt, as immediate mode returns it."""

    message_id: int
    status: MessageStatus
    detail: str
    account_id: int
    transcript: list[dict[str, object]] = field(default_factory=list)


class Recorder:
    """Commits delivery results in groups, in line on the sending thread.

    `put` queues a settled result the moment the server answered and commits everything queued
    once `group` results wait or `interval_s` has passed since the previous commit; `flush`
    (before a reconnect) and `close` (end of the chunk) commit the rest. So a slow server's
    results are committed right after each reply and a fast one's share a transaction per
    group; nothing waits for the end of a batch. A crash loses at most the uncommitted group
    (under `group` results that arrived within `interval_s` before the exchange in progress);
    those messages are still leased as 'sending', i.e. in flight, and are re-sent with the same
    Message-ID.

    All runs of one thread share a recorder (`ResultWriter.recorder`): the worker's thread
    serves all its connections, whose results then share transactions (measured on
    bench/outbound.py, 4 connections: about 8 % more throughput than a recorder per run; a
    writer thread per connection, the first design, lost to GIL hand-offs). `lock` is shared by
    every run of a process, and by the claim, so their commits queue on it instead of sleeping
    in SQLite's busy handler (on PostgreSQL it merely serialises one process's commits).
    """

    def __init__(
        self,
        engine: sa.Engine,
        repo: OutboxRepository,
        lock: threading.Lock,
        *,
        group: int = 100,
        interval_s: float = 0.05,
    ) -> None:
        self._engine = engine
        self._repo = repo
        self._lock = lock
        self._group = group
        self._interval_s = interval_s
        self._pending: list[Finished] = []
        self._flushed_at = time.monotonic()

    def put(self, job: Finished) -> None:
        self._pending.append(job)
        if (
            len(self._pending) >= self._group
            or time.monotonic() - self._flushed_at >= self._interval_s
        ):
            self.flush()

    def flush(self) -> None:
        """Commit every queued result in one transaction."""
        jobs, self._pending = self._pending, []
        if jobs:
            with self._lock, self._engine.begin() as conn:
                self._repo.finish_many(conn, jobs, utcnow())
        self._flushed_at = time.monotonic()

    def close(self) -> None:
        self.flush()


@dataclass(slots=True)
class Run:
    """One pass of an account over a chunk: the account actually used (after failover), the
    lease owner, where results go, and the transcript when one is kept (debug, immediate)."""

    account: Account
    owner: str
    recorder: Recorder | None = None
    failover_from: int | None = None
    transcript: Transcript | None = None
    _mark: int = 0

    def trail(self) -> list[dict[str, object]] | None:
        """Transcript entries since the previous call (this message's part of the session)."""
        if self.transcript is None:
            return None
        entries = self.transcript.to_dicts()
        part, self._mark = entries[self._mark :], len(entries)
        return part


class ResultWriter:
    def __init__(
        self,
        engine: sa.Engine,
        repo: OutboxRepository,
        policy: RetryPolicy,
        lock: threading.Lock,
    ) -> None:
        self._engine = engine
        self._repo = repo
        self._policy = policy
        self._lock = lock
        self._local = threading.local()

    def recorder(self) -> Recorder:
        """The recorder of this thread: the runs that one thread serves (the worker's
        Multiplexer) commit their results together, in fewer and larger transactions. Every
        commit takes `lock` (shared with the claim)."""
        recorder: Recorder | None = getattr(self._local, "recorder", None)
        if recorder is None:
            recorder = self._local.recorder = Recorder(self._engine, self._repo, self._lock)
        return recorder

    def defer(
        self, run: Run, message: ClaimedMessage, detail: str, outcome: str = "deferred"
    ) -> DeliveryResult:
        """Every open recipient deferred with `detail` (network trouble, auth, no account)."""
        updates = [
            RecipientUpdate(r.id, RecipientStatus.DEFERRED, None, "", detail)
            for r in message.recipients
        ]
        return self.record(run, message, updates, outcome, None, detail, utcnow())

    def record(
        self,
        run: Run,
        message: ClaimedMessage,
        updates: list[RecipientUpdate],
        outcome: str,
        code: int | None,
        detail: str,
        started: datetime,
    ) -> DeliveryResult:
        """Settle now (status, retry policy: backoff or give up at expiry); commit the result and
        its log row in one transaction, through the run's recorder when it has one."""
        status = settle([u.status for u in updates])
        next_at = None
        if status is MessageStatus.DEFERRED:
            decision = self._policy.decide(message.attempts, utcnow(), message.expires_at)
            if decision.give_up:
                updates = [
                    u
                    if u.status in (RecipientStatus.SENT, RecipientStatus.FAILED)
                    else RecipientUpdate(
                        u.id,
                        RecipientStatus.FAILED,
                        u.code,
                        u.enhanced,
                        f"{decision.reason}; last answer: {u.text}",
                    )
                    for u in updates
                ]
                status, detail = settle([u.status for u in updates]), decision.reason
            else:
                next_at = decision.send_again_at
        trail = run.trail()
        attempt = AttemptRecord(
            account_id=run.account.id,
            worker=run.owner,
            started_at=started,
            outcome=outcome or status.value,
            code=code,
            detail=detail,
            failover_from=run.failover_from,
            transcript=trail,
        )
        finished = Finished(
            message.id,
            run.owner,
            status,
            tuple(updates),
            attempt,
            next_at,
            _LEVEL.get(status, "error"),
            f"message {message.id} {message.message_id} {status.value}: {detail}",
            trail if run.account.debug else None,
        )
        if run.recorder is None:
            with self._lock, self._engine.begin() as conn:
                self._repo.finish_many(conn, [finished], utcnow())
        else:
            run.recorder.put(finished)
        return DeliveryResult(message.id, status, detail, run.account.id, trail or [])
