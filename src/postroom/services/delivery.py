"""Delivering claimed messages: one reused connection per account chunk, results per recipient.

    plan(batch) → chunks (per account [and sender, for per-employee logins], at most
                  max_messages_per_connection each, at most max_connections per account)
    deliver_chunk(chunk) → open ONE SmtpSession → for each message: send → write its result

Reply classes decide (RFC 5321 §4.2.1): 2xx sent, 4xx and network errors deferred with the
retry policy's backoff, 5xx failed for that recipient only. A connection lost after the final
"." is "unknown" and the message is re-sent later with the same bytes and Message-ID. An auth
failure defers the whole account and flags it instead of trying again per message (lockouts).
Connect or auth failure switches to the account's failover account when one is configured.
Each result is committed right after the server's answer, with a system-log row (source
"Outgoing", with account_id, so it shows in the account's timeline).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from postroom import errors
from postroom.domain.accounts import Account, AccountStatus, AuthMode, Transport
from postroom.domain.delivery import RecipientResult, ReplyClass
from postroom.domain.outbox import (
    AttemptRecord,
    ClaimedMessage,
    MessageStatus,
    RecipientStatus,
    RecipientUpdate,
    RetryPolicy,
    settle,
)
from postroom.protocols.endpoints import NetworkPolicy
from postroom.protocols.sendmail import send_via_sendmail
from postroom.protocols.smtp import SendOutcome, SmtpSession
from postroom.protocols.transcript import Transcript
from postroom.services.accounts import AccountService
from postroom.services.log import SystemLogService
from postroom.storage.outbox import OutboxRepository
from postroom.storage.types import utcnow

_STATUS = {
    ReplyClass.SUCCESS: RecipientStatus.SENT,
    ReplyClass.TRANSIENT: RecipientStatus.DEFERRED,
    ReplyClass.PERMANENT: RecipientStatus.FAILED,
}
# Failures of the connection itself: another server (the failover account) may do better.
_CONNECT_FAILURES = (
    errors.ConnectFailed,
    errors.ProtocolTimeout,
    errors.TlsFailed,
    errors.DestinationRefused,
    errors.AuthFailed,
)
EX_TEMPFAIL = 75  # sysexits.h: sendmail's "try again later"


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    """One message after one attempt, as immediate mode returns it."""

    message_id: int
    status: MessageStatus
    detail: str
    account_id: int
    transcript: list[dict[str, object]] = field(default_factory=list)


class _Recorder:
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


@dataclass(frozen=True, slots=True)
class Chunk:
    account_id: int
    messages: tuple[ClaimedMessage, ...]


class DeliveryService:
    def __init__(
        self,
        engine: sa.Engine,
        repo: OutboxRepository,
        accounts: AccountService,
        log: SystemLogService,
        policy: RetryPolicy,
        network_policy: NetworkPolicy,
    ) -> None:
        self._engine = engine
        self._repo = repo
        self._accounts = accounts
        self._log = log
        self._policy = policy
        self._network = network_policy

    # -- planning ------------------------------------------------------------------------------

    def plan(self, batch: Sequence[ClaimedMessage], owner: str) -> list[Chunk]:
        """Split a claimed batch into connection-sized chunks; what does not fit under the
        account's connection cap is released back to the queue untouched."""
        by_key: dict[tuple[int, int | None], list[ClaimedMessage]] = {}
        accounts: dict[int, Account] = {}
        for message in batch:
            if message.account_id not in accounts:
                accounts[message.account_id] = self._accounts.get_system(message.account_id)
            out = accounts[message.account_id].outgoing
            per_sender = out is not None and out.auth_mode is AuthMode.PER_EMPLOYEE
            key = (message.account_id, message.sender_user_id if per_sender else None)
            by_key.setdefault(key, []).append(message)
        chunks: list[Chunk] = []
        leftover: list[int] = []
        used: dict[int, int] = {}
        for (account_id, _sender), messages in by_key.items():
            out = accounts[account_id].outgoing
            size = max(out.max_messages_per_connection if out else 100, 1)
            cap = max(out.max_connections if out else 1, 1)
            for start in range(0, len(messages), size):
                part = messages[start : start + size]
                if used.get(account_id, 0) >= cap:
                    leftover += [m.id for m in part]
                    continue
                used[account_id] = used.get(account_id, 0) + 1
                chunks.append(Chunk(account_id, tuple(part)))
        if leftover:
            with self._engine.begin() as conn:
                self._repo.release(conn, leftover, owner, utcnow())
        return chunks

    # -- delivering ----------------------------------------------------------------------------

    def deliver_one(self, message: ClaimedMessage, owner: str) -> DeliveryResult:
        """Deliver one leased message now (immediate mode) and return its result."""
        results = self.deliver_chunk(Chunk(message.account_id, (message,)), owner, capture=True)
        if results:
            return results[0]
        with self._engine.begin() as conn:  # released (rate limit): it stays queued
            stored = self._repo.get(conn, message.id, details=False)
        return DeliveryResult(
            message.id, stored.status, "delayed by the rate limit", message.account_id
        )

    def deliver_chunk(
        self,
        chunk: Chunk,
        owner: str,
        stop: threading.Event | None = None,
        *,
        capture: bool = False,
    ) -> list[DeliveryResult]:
        """Send a chunk over one connection; returns a result per message that was tried."""
        account = self._accounts.get_system(chunk.account_id)
        if self._usable(account):
            return self._run(account, chunk.messages, owner, stop, None, capture)
        backup = self._failover(account)
        if backup is None:
            detail = f"account {account.name!r} cannot send (inactive, paused or no server)"
            return self._defer_all(chunk.messages, owner, account.id, detail, None)
        return self._run(backup, chunk.messages, owner, stop, account.id, capture)

    def _run(
        self,
        account: Account,
        messages: Sequence[ClaimedMessage],
        owner: str,
        stop: threading.Event | None,
        failover_from: int | None,
        capture: bool,
    ) -> list[DeliveryResult]:
        out = account.outgoing
        assert out is not None
        recorder = _Recorder()
        try:
            if out.transport is Transport.SENDMAIL:
                return [
                    self._sendmail(account, m, owner, failover_from, recorder)
                    for m in self._go_ahead(account, messages, owner, stop)
                ]
            return self._smtp(account, messages, owner, stop, failover_from, capture, recorder)
        finally:
            recorder.close()

    def _smtp(
        self,
        account: Account,
        messages: Sequence[ClaimedMessage],
        owner: str,
        stop: threading.Event | None,
        failover_from: int | None,
        capture: bool,
        recorder: _Recorder,
    ) -> list[DeliveryResult]:
        hold = self._auth_hold(account)
        if hold is not None:
            with self._engine.begin() as conn:
                self._repo.release(conn, [m.id for m in messages], owner, utcnow(), hold)
            return []
        transcript = Transcript("smtp") if capture or account.debug else None
        results: list[DeliveryResult] = []
        session: SmtpSession | None = None
        try:
            for message in self._go_ahead(account, messages, owner, stop):
                if session is None or not session.is_open:
                    try:
                        session = self._open(account, message, transcript)
                    except errors.PostroomError as exc:
                        rest = list(messages[messages.index(message) :])
                        return results + self._open_failed(
                            account,
                            rest,
                            owner,
                            stop,
                            failover_from,
                            capture,
                            exc,
                            transcript,
                            recorder,
                        )
                results.append(
                    self._send(
                        session, account, message, owner, failover_from, transcript, recorder
                    )
                )
        finally:
            if session is not None:
                session.close()
        return results

    def _go_ahead(
        self,
        account: Account,
        messages: Sequence[ClaimedMessage],
        owner: str,
        stop: threading.Event | None,
    ) -> Iterator[ClaimedMessage]:
        """The messages that may go now, one at a time; the rest are released, never failed.

        A stop request releases what was not started. The rate limit counts this account's
        attempts in the last period across all workers (the attempt log is shared); a full
        window delays the remaining messages until the oldest attempt leaves it.
        """
        for index, message in enumerate(self._within_rate(account, messages, owner)):
            if stop is not None and stop.is_set():
                with self._engine.begin() as conn:
                    self._repo.release(conn, [m.id for m in messages[index:]], owner, utcnow())
                return
            yield message

    def _within_rate(
        self, account: Account, messages: Sequence[ClaimedMessage], owner: str
    ) -> list[ClaimedMessage]:
        out = account.outgoing
        assert out is not None
        count, period = out.rate_limit_count, out.rate_limit_period_s
        if not (count and period):
            return list(messages)
        allowed: list[ClaimedMessage] = []
        with self._engine.begin() as conn:
            window = self._repo.sent_since(conn, account.id, utcnow() - timedelta(seconds=period))
            for index, message in enumerate(messages):
                if len(window) + len(allowed) >= count:
                    # A slot frees when the count-th most recent send leaves the window.
                    stamps = sorted(window) + [utcnow()] * len(allowed)
                    free_at = stamps[len(stamps) - count] + timedelta(seconds=period)
                    later = [m.id for m in messages[index:]]
                    self._repo.release(conn, later, owner, utcnow(), max(free_at, utcnow()))
                    self._log.write(
                        "Outgoing",
                        "info",
                        f"rate limit {count}/{period}s reached: {len(later)} messages wait "
                        f"until {free_at:%H:%M:%S}",
                        account_id=account.id,
                        action="rate_limited",
                        conn=conn,
                    )
                    break
                allowed.append(message)
        return allowed

    def _open(
        self, account: Account, message: ClaimedMessage, transcript: Transcript | None
    ) -> SmtpSession:
        _, endpoint = self._accounts.outgoing_endpoint(
            account.id, sender_user_id=message.sender_user_id
        )
        session = SmtpSession(
            endpoint,
            policy=self._network,
            operation_deadline_s=max(endpoint.timeout_s * 4, 30.0),
            transcript=transcript,
        )
        session.open()
        with self._engine.begin() as conn:
            if self._repo.auth_failing_since(conn, account.id) is not None:
                self._repo.set_auth_failing(conn, account.id, None)
                self._log.write(
                    "Outgoing",
                    "info",
                    "authentication works again",
                    account_id=account.id,
                    action="auth_recovered",
                    conn=conn,
                )
        return session

    def _open_failed(
        self,
        account: Account,
        messages: list[ClaimedMessage],
        owner: str,
        stop: threading.Event | None,
        failover_from: int | None,
        capture: bool,
        exc: errors.PostroomError,
        transcript: Transcript | None,
        recorder: _Recorder,
    ) -> list[DeliveryResult]:
        """Connect/auth failed: flag auth trouble, try the failover account, else defer all."""
        if isinstance(exc, errors.AuthFailed):
            self._flag_auth_failure(account, exc)
        if failover_from is None and isinstance(exc, _CONNECT_FAILURES):
            backup = self._failover(account)
            if backup is not None:
                with self._engine.begin() as conn:
                    self._log.write(
                        "Outgoing",
                        "warning",
                        f"{account.name!r} failed ({exc.message}); failing over to {backup.name!r}",
                        account_id=account.id,
                        action="failover",
                        conn=conn,
                    )
                return self._run(backup, messages, owner, stop, account.id, capture)
        trail = transcript.to_dicts() if transcript is not None else None
        outcome = "auth_failed" if isinstance(exc, errors.AuthFailed) else "deferred"
        return self._defer_all(
            messages, owner, account.id, exc.message, trail, failover_from, outcome, recorder
        )

    def _auth_hold(self, account: Account) -> datetime | None:
        """While the account's login fails, the time before which no login is tried again."""
        with self._engine.begin() as conn:
            since = self._repo.auth_failing_since(conn, account.id)
            last = self._repo.last_attempt_at(conn, account.id, "auth_failed")
        if since is None or last is None:
            return None
        hold = self._policy.auth_hold_until(since, last)
        return hold if hold > utcnow() else None

    def _flag_auth_failure(self, account: Account, exc: errors.PostroomError) -> None:
        """Mark the account and move all its waiting mail to the next backoff step, so the
        server sees one login attempt per interval, not one per message (lockout)."""
        now = utcnow()
        with self._engine.begin() as conn:
            since = self._repo.auth_failing_since(conn, account.id)
            if since is None:
                since = now
                self._repo.set_auth_failing(conn, account.id, now)
                self._log.notify(
                    "error",
                    f"outgoing authentication of {account.name!r} fails: {exc.message}",
                    account_id=account.id,
                    conn=conn,
                )
            hold = self._policy.auth_hold_until(since, now)
            self._repo.postpone_account(conn, account.id, hold)
            self._log.write(
                "SMTP Auth",
                "error",
                f"authentication failed: {exc.message}",
                account_id=account.id,
                action="auth_failed",
                conn=conn,
            )

    def _send(
        self,
        session: SmtpSession,
        account: Account,
        message: ClaimedMessage,
        owner: str,
        failover_from: int | None,
        transcript: Transcript | None,
        recorder: _Recorder,
    ) -> DeliveryResult:
        started = utcnow()
        mark = len(transcript.entries) if transcript is not None else 0
        addresses = [r.address for r in message.recipients]
        try:
            outcome = session.send(message.envelope_from, addresses, message.raw)
        except errors.PostroomError as exc:
            # Broke before the final ".": nothing was accepted; try again later.
            updates = [
                RecipientUpdate(r.id, RecipientStatus.DEFERRED, None, "", exc.message)
                for r in message.recipients
            ]
            trail = transcript.to_dicts()[mark:] if transcript is not None else None
            return self._record(
                message,
                owner,
                account,
                updates,
                "deferred",
                None,
                exc.message,
                started,
                failover_from,
                trail,
                recorder,
            )
        updates, detail, code = _updates(message, outcome)
        trail = transcript.to_dicts()[mark:] if transcript is not None else None
        return self._record(
            message,
            owner,
            account,
            updates,
            "unknown" if outcome.unknown else "",
            code,
            detail,
            started,
            failover_from,
            trail,
            recorder,
        )

    def _sendmail(
        self,
        account: Account,
        message: ClaimedMessage,
        owner: str,
        failover_from: int | None,
        recorder: _Recorder,
    ) -> DeliveryResult:
        out = account.outgoing
        assert out is not None
        started = utcnow()
        addresses = [r.address for r in message.recipients]
        try:
            result = send_via_sendmail(
                out.sendmail_path,
                message.raw,
                addresses,
                sender=message.envelope_from,
                timeout_s=out.timeout_s,
            )
            status = (
                RecipientStatus.SENT
                if result.exit_status == 0
                else RecipientStatus.DEFERRED
                if result.exit_status == EX_TEMPFAIL
                else RecipientStatus.FAILED
            )
            detail = f"sendmail exit status {result.exit_status}: {result.output}".strip()
        except errors.PostroomError as exc:
            status, detail = RecipientStatus.DEFERRED, exc.message
        updates = [RecipientUpdate(r.id, status, None, "", detail) for r in message.recipients]
        return self._record(
            message,
            owner,
            account,
            updates,
            "",
            None,
            detail,
            started,
            failover_from,
            None,
            recorder,
        )

    def _defer_all(
        self,
        messages: Sequence[ClaimedMessage],
        owner: str,
        account_id: int,
        detail: str,
        transcript: list[dict[str, object]] | None,
        failover_from: int | None = None,
        outcome: str = "deferred",
        recorder: _Recorder | None = None,
    ) -> list[DeliveryResult]:
        account = self._accounts.get_system(account_id)
        started = utcnow()
        return [
            self._record(
                m,
                owner,
                account,
                [
                    RecipientUpdate(r.id, RecipientStatus.DEFERRED, None, "", detail)
                    for r in m.recipients
                ],
                outcome,
                None,
                detail,
                started,
                failover_from,
                transcript,
                recorder,
            )
            for m in messages
        ]

    def _record(
        self,
        message: ClaimedMessage,
        owner: str,
        account: Account,
        updates: list[RecipientUpdate],
        outcome: str,
        code: int | None,
        detail: str,
        started: datetime,
        failover_from: int | None,
        transcript: list[dict[str, object]] | None,
        recorder: _Recorder | None = None,
    ) -> DeliveryResult:
        """Settle the message and apply the retry policy now; commit the result and its log
        row in one transaction, through `recorder` when given (see _Recorder)."""
        now = utcnow()
        status = settle([u.status for u in updates])
        next_at = None
        if status is MessageStatus.DEFERRED:
            decision = self._policy.decide(message.attempts, now, message.expires_at)
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
        attempt = AttemptRecord(
            account_id=account.id,
            worker=owner,
            started_at=started,
            outcome=outcome or status.value,
            code=code,
            detail=detail,
            failover_from=failover_from,
            transcript=transcript,
        )

        def write() -> None:
            with self._engine.begin() as conn:
                self._write(conn, message, owner, account, status, updates, attempt, next_at)

        if recorder is None:
            write()
        else:
            recorder.put(write)
        return DeliveryResult(message.id, status, detail, account.id, transcript or [])

    def _write(
        self,
        conn: sa.Connection,
        message: ClaimedMessage,
        owner: str,
        account: Account,
        status: MessageStatus,
        updates: list[RecipientUpdate],
        attempt: AttemptRecord,
        next_at: datetime | None,
    ) -> None:
        written = self._repo.finish(
            conn,
            message.id,
            owner,
            status=status,
            recipients=updates,
            attempt=attempt,
            now=utcnow(),
            next_attempt_at=next_at,
            last_error="" if status is MessageStatus.SENT else attempt.detail,
        )
        if written:
            level = {MessageStatus.SENT: "info", MessageStatus.DEFERRED: "warning"}
            self._log.write(
                "Outgoing",
                level.get(status, "error"),
                f"message {message.id} {message.message_id} {status.value}: {attempt.detail}",
                account_id=account.id,
                action=f"message_{status.value}",
                transcript=attempt.transcript if account.debug else None,
                conn=conn,
            )

    # -- accounts ------------------------------------------------------------------------------

    @staticmethod
    def _usable(account: Account) -> bool:
        return (
            account.status is AccountStatus.ACTIVE
            and account.outgoing is not None
            and not account.outgoing.paused
        )

    def _failover(self, account: Account) -> Account | None:
        backup_id = account.outgoing.failover_account_id if account.outgoing else None
        if backup_id is None or backup_id == account.id:
            return None
        try:
            backup = self._accounts.get_system(backup_id)
        except errors.NotFound:
            return None
        return backup if self._usable(backup) else None


def _updates(
    message: ClaimedMessage, outcome: SendOutcome
) -> tuple[list[RecipientUpdate], str, int | None]:
    """Recipient updates for one SendOutcome, a one-line detail, and the deciding code."""
    by_address: dict[str, RecipientResult] = {r.address: r for r in outcome.recipients}
    updates: list[RecipientUpdate] = []
    for recipient in message.recipients:
        result = by_address.get(recipient.address)
        if result is None:
            updates.append(
                RecipientUpdate(
                    recipient.id, RecipientStatus.DEFERRED, None, "", "no answer for this recipient"
                )
            )
        elif outcome.unknown and result.reply_class is ReplyClass.SUCCESS:
            # Accepted at RCPT, then the line died after the final ".": maybe delivered.
            updates.append(
                RecipientUpdate(
                    recipient.id,
                    RecipientStatus.DEFERRED,
                    None,
                    "",
                    "connection lost after the message was sent; "
                    "re-sending with the same Message-ID",
                )
            )
        else:
            updates.append(
                RecipientUpdate(
                    recipient.id,
                    _STATUS[result.reply_class],
                    result.code,
                    result.enhanced_status or "",
                    result.text,
                )
            )
    if outcome.unknown:
        return updates, "connection lost after the final '.'; outcome unknown", None
    if outcome.data is not None:
        return updates, f"{outcome.data.code} {outcome.data.text}", outcome.data.code
    worst = max(outcome.recipients, key=lambda r: r.code)
    return updates, f"{worst.code} {worst.text} ({worst.stage})", worst.code
