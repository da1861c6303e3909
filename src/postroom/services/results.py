"""Settling one delivery attempt and committing it: recipients, message status, retry time,
attempt log row and system-log row ("Outgoing", with account_id: the account timeline).

The delivery service decides *what happened*; this module decides *what it means* (reply class
→ recipient status → message status → retry decision) and writes it, per message, right after
the server's answer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from postroom.domain.accounts import Account
from postroom.domain.outbox import (
    AttemptRecord,
    ClaimedMessage,
    MessageStatus,
    RecipientStatus,
    RecipientUpdate,
    RetryPolicy,
    settle,
)
from postroom.protocols.transcript import Transcript
from postroom.services.log import SystemLogService
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
    """Writes results on its own thread, in order, one transaction per message, while the
    session already sends the next message (the database round trip no longer adds to the
    SMTP one). A crash loses at most the few results still queued; those messages are still
    leased as 'sending', i.e. in flight, and are re-sent with the same Message-ID."""

    def __init__(self, depth: int = 16) -> None:
        self._jobs: queue.Queue[Callable[[], None] | None] = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name="delivery-recorder", daemon=True)
        self._thread.start()

    def put(self, job: Callable[[], None]) -> None:
        if self._error is not None:
            raise self._error
        self._jobs.put(job)

    def close(self) -> None:
        """Wait until every queued result is committed; re-raise a write failure."""
        self._jobs.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _loop(self) -> None:
        while (job := self._jobs.get()) is not None:
            if self._error is None:
                try:
                    job()
                except BaseException as exc:  # surfaced by put()/close() on the sender's side
                    self._error = exc


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
        log: SystemLogService,
        policy: RetryPolicy,
    ) -> None:
        self._engine = engine
        self._repo = repo
        self._log = log
        self._policy = policy

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

        def write() -> None:
            with self._engine.begin() as conn:
                self._write(conn, run, message, status, updates, attempt, next_at)

        if run.recorder is None:
            write()
        else:
            run.recorder.put(write)
        return DeliveryResult(message.id, status, detail, run.account.id, trail or [])

    def _write(
        self,
        conn: sa.Connection,
        run: Run,
        message: ClaimedMessage,
        status: MessageStatus,
        updates: list[RecipientUpdate],
        attempt: AttemptRecord,
        next_at: datetime | None,
    ) -> None:
        written = self._repo.finish(
            conn,
            message.id,
            run.owner,
            status=status,
            recipients=updates,
            attempt=attempt,
            now=utcnow(),
            next_attempt_at=next_at,
            last_error="" if status is MessageStatus.SENT else attempt.detail,
        )
        if written:
            self._log.write(
                "Outgoing",
                _LEVEL.get(status, "error"),
                f"message {message.id} {message.message_id} {status.value}: {attempt.detail}",
                account_id=run.account.id,
                action=f"message_{status.value}",
                transcript=attempt.transcript if run.account.debug else None,
                conn=conn,
            )
