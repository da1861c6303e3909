"""Delivering claimed messages: one reused connection per account chunk, results per recipient.

    plan(batch) → chunks (per account [and sender, for per-employee logins], at most
                  max_messages_per_connection each, at most max_connections per account)
    deliver_chunk(chunk) → open ONE SmtpSession → for each message: send → record its result

On a server with PIPELINING each message's body carries the next message's envelope in the
same write (RFC 2920 across messages, see SmtpSession.send): one write and one round trip per
message. So the next message is taken before this one's body goes, and a stop request takes
effect one message later (the rate limit is settled before the first): a message taken is
always tried and its result recorded like any other, never left behind with its envelope out.

Reply classes decide (RFC 5321 §4.2.1): 2xx sent, 4xx and network errors deferred with the
retry policy's backoff, 5xx failed for that recipient only. A connection lost after the final
"." is "unknown" and the message is re-sent later with the same bytes and Message-ID. An auth
failure defers the whole account and flags it instead of trying again per message (lockouts).
Connect or auth failure switches to the account's failover account when one is configured.
A per-account rate limit delays (releases back to the queue), it never fails a message.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from postroom import errors
from postroom.domain.accounts import Account, AccountStatus, AuthMode, Transport
from postroom.domain.outbox import (
    ClaimedMessage,
    RecipientStatus,
    RecipientUpdate,
    RetryPolicy,
    recipient_updates,
)
from postroom.protocols.endpoints import NetworkPolicy
from postroom.protocols.sendmail import send_via_sendmail
from postroom.protocols.smtp import Mail, SendOutcome, SmtpSession
from postroom.protocols.transcript import Transcript
from postroom.services.accounts import AccountService
from postroom.services.log import SystemLogService
from postroom.services.multiplex import Call, Steps, Wait, run_inline
from postroom.services.results import DeliveryResult, ResultWriter, Run
from postroom.storage.outbox import OutboxRepository
from postroom.storage.types import utcnow

# Failures of the connection itself: another server (the failover account) may do better.
_CONNECT_FAILURES = (
    errors.ConnectFailed,
    errors.ProtocolTimeout,
    errors.TlsFailed,
    errors.DestinationRefused,
    errors.AuthFailed,
)
EX_TEMPFAIL = 75  # sysexits.h: sendmail's "try again later"

__all__ = ["Chunk", "DeliveryResult", "DeliveryService"]


@dataclass(frozen=True, slots=True)
class Chunk:
    """Messages for one connection, with their account as loaded when the batch was planned
    (its state is re-read at the next claim, a fraction of a second later)."""

    account: Account
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
        # One writer at a time per process: claims and result commits queue on this lock
        # instead of sleeping in SQLite's busy handler (see results.Recorder).
        self._write_lock = threading.Lock()
        self._results = ResultWriter(engine, repo, policy, self._write_lock)

    def claim(self, owner: str, limit: int, lease_s: float) -> list[ClaimedMessage]:
        """Lease up to `limit` due messages to `owner` (see OutboxRepository.claim)."""
        with self._write_lock, self._engine.begin() as conn:
            return self._repo.claim(conn, owner, limit, lease_s, utcnow())

    def plan(self, batch: Sequence[ClaimedMessage], owner: str, parallel: int = 1) -> list[Chunk]:
        """Split a claimed batch into connection-sized chunks, spread over up to `parallel`
        connections per account (never more than its max_connections); what does not fit under
        the account's caps is released back to the queue untouched."""
        groups: dict[tuple[int, int | None], list[ClaimedMessage]] = {}
        accounts: dict[int, Account] = {}
        for message in batch:
            if message.account_id not in accounts:
                accounts[message.account_id] = self._accounts.get_system(message.account_id)
            out = accounts[message.account_id].outgoing
            per_sender = out is not None and out.auth_mode is AuthMode.PER_EMPLOYEE
            groups.setdefault(
                (message.account_id, message.sender_user_id if per_sender else None), []
            ).append(message)
        chunks: list[Chunk] = []
        leftover: list[int] = []
        used: dict[int, int] = {}
        for (account_id, _sender), messages in groups.items():
            out = accounts[account_id].outgoing
            cap = max(out.max_connections if out else 1, 1)
            spread = -(-len(messages) // max(min(cap, parallel), 1))  # ceiling division
            size = max(min(out.max_messages_per_connection if out else 100, spread), 1)
            for start in range(0, len(messages), size):
                part = messages[start : start + size]
                if used.get(account_id, 0) >= cap:
                    leftover += [m.id for m in part]
                    continue
                used[account_id] = used.get(account_id, 0) + 1
                chunks.append(Chunk(accounts[account_id], tuple(part)))
        if leftover:
            with self._engine.begin() as conn:
                self._repo.release(conn, leftover, owner, utcnow())
        return chunks

    def deliver_one(self, message: ClaimedMessage, owner: str) -> DeliveryResult:
        """Deliver one leased message now (immediate mode) and return its result."""
        account = self._accounts.get_system(message.account_id)
        results = self.deliver_chunk(Chunk(account, (message,)), owner, capture=True)
        if results:
            return results[0]
        with self._engine.begin() as conn:  # released (rate limit, auth hold): still queued
            stored = self._repo.get(conn, message.id, details=False)
        return DeliveryResult(
            message.id, stored.status, "delayed: it waits in the queue", message.account_id
        )

    def deliver_chunk(
        self,
        chunk: Chunk,
        owner: str,
        stop: threading.Event | None = None,
        *,
        capture: bool = False,
    ) -> list[DeliveryResult]:
        """Send a chunk over one connection in this thread; a result per message tried."""
        return run_inline(self.steps(chunk, owner, stop, capture=capture))

    def steps(
        self,
        chunk: Chunk,
        owner: str,
        stop: threading.Event | None = None,
        *,
        capture: bool = False,
    ) -> Steps[list[DeliveryResult]]:
        """deliver_chunk as steps (services/multiplex.py), for the worker's Multiplexer."""
        account = chunk.account
        if self._usable(account):
            return (yield from self._run(account, chunk.messages, owner, stop, None, capture))
        backup = self._failover(account)
        if backup is None:
            run = Run(account, owner)
            detail = f"account {account.name!r} cannot send (inactive, paused or no server)"
            return [self._results.defer(run, m, detail) for m in chunk.messages]
        return (yield from self._run(backup, chunk.messages, owner, stop, account.id, capture))

    def _run(
        self,
        account: Account,
        messages: Sequence[ClaimedMessage],
        owner: str,
        stop: threading.Event | None,
        failover_from: int | None,
        capture: bool,
    ) -> Steps[list[DeliveryResult]]:
        transcript = Transcript("smtp") if capture or account.debug else None
        run = Run(account, owner, self._results.recorder(), failover_from, transcript)
        try:
            out = account.outgoing
            assert out is not None
            if out.transport is Transport.SENDMAIL:
                results = []
                for message in self._go_ahead(run, messages, stop):
                    results.append((yield from self._sendmail(run, message)))
                return results
            return (yield from self._smtp(run, messages, stop, capture))
        finally:
            assert run.recorder is not None
            run.recorder.close()

    def _smtp(
        self,
        run: Run,
        messages: Sequence[ClaimedMessage],
        stop: threading.Event | None,
        capture: bool,
    ) -> Steps[list[DeliveryResult]]:
        """The messages over one connection (reconnecting when a send closed it); connecting
        and QUIT run as Calls, the waits for answers as Waits."""
        failing, hold = self._auth_state(run.account)
        if hold is not None:
            with self._engine.begin() as conn:
                self._repo.release(conn, [m.id for m in messages], run.owner, utcnow(), hold)
            return []
        results: list[DeliveryResult] = []
        session: SmtpSession | None = None
        go_ahead = ((m, _mail(m)) for m in self._go_ahead(run, messages, stop))
        try:
            current = next(go_ahead, None)
            while current is not None:
                message, mail = current
                if session is None or not session.is_open:
                    assert run.recorder is not None
                    run.recorder.flush()  # connecting may take long: commit what is known
                    try:
                        session = yield Call(self._open, run, message, failing)
                        failing = None
                    except errors.PostroomError as exc:
                        rest = list(messages[messages.index(message) :])
                        return results + (
                            yield from self._open_failed(run, rest, stop, capture, exc)
                        )
                # Taken now because its envelope rides with this body; it is sent next in
                # any case (after a reconnect if this send closed the connection).
                following = next(go_ahead, None)
                then = following[1] if following is not None else None
                results.append((yield from self._send(run, session, message, mail, then)))
                current = following
        except BaseException:
            if session is not None:
                session.close()
            raise
        if session is not None and session.is_open:
            yield Call(session.close)  # QUIT waits for the server's answer
        return results

    def _go_ahead(
        self, run: Run, messages: Sequence[ClaimedMessage], stop: threading.Event | None
    ) -> Iterator[ClaimedMessage]:
        """The messages that may go now, one at a time; the rest are released, never failed.

        A stop request releases what was not taken yet. The rate limit counts this account's
        attempts in the last period across all workers (the attempt log is shared); a full
        window delays the remaining messages until the oldest attempt leaves it.
        """
        for index, message in enumerate(self._within_rate(run, messages)):
            if stop is not None and stop.is_set():
                with self._engine.begin() as conn:
                    self._repo.release(conn, [m.id for m in messages[index:]], run.owner, utcnow())
                return
            yield message

    def _within_rate(self, run: Run, messages: Sequence[ClaimedMessage]) -> list[ClaimedMessage]:
        out, account = run.account.outgoing, run.account
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
                    self._repo.release(conn, later, run.owner, utcnow(), max(free_at, utcnow()))
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

    def _open(self, run: Run, message: ClaimedMessage, failing: datetime | None) -> SmtpSession:
        """Connect and log in; `failing` (the account's login was failing) is cleared once a
        login works again."""
        endpoint = self._accounts.sending_endpoint(
            run.account, sender_user_id=message.sender_user_id
        )
        session = SmtpSession(
            endpoint,
            policy=self._network,
            transcript=run.transcript,
            operation_deadline_s=max(endpoint.timeout_s * 4, 30.0),
        )
        session.open()
        if failing is not None:
            with self._engine.begin() as conn:
                self._repo.set_auth_failing(conn, run.account.id, None)
                self._log.write(
                    "Outgoing",
                    "info",
                    "authentication works again",
                    account_id=run.account.id,
                    action="auth_recovered",
                    conn=conn,
                )
        return session

    def _open_failed(
        self,
        run: Run,
        messages: list[ClaimedMessage],
        stop: threading.Event | None,
        capture: bool,
        exc: errors.PostroomError,
    ) -> Steps[list[DeliveryResult]]:
        """Connect/auth failed: flag auth trouble, try the failover account, else defer all."""
        account = run.account
        if isinstance(exc, errors.AuthFailed):
            self._flag_auth_failure(account, exc)
        if run.failover_from is None and isinstance(exc, _CONNECT_FAILURES):
            backup = self._failover(account)
            if backup is not None:
                self._log.write(
                    "Outgoing",
                    "warning",
                    f"{account.name!r} failed ({exc.message}); failing over to {backup.name!r}",
                    account_id=account.id,
                    action="failover",
                )
                return (
                    yield from self._run(backup, messages, run.owner, stop, account.id, capture)
                )
        outcome = "auth_failed" if isinstance(exc, errors.AuthFailed) else "deferred"
        return [self._results.defer(run, m, exc.message, outcome) for m in messages]

    def _auth_state(self, account: Account) -> tuple[datetime | None, datetime | None]:
        """Since when the account's login fails (None: it works) and, while it fails, the time
        before which no login is tried again (None: try now)."""
        with self._engine.begin() as conn:
            since = self._repo.auth_failing_since(conn, account.id)
            if since is None:
                return None, None
            last = self._repo.last_attempt_at(conn, account.id, "auth_failed")
        hold = None if last is None else self._policy.auth_hold_until(since, last)
        return since, hold if hold is not None and hold > utcnow() else None

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
            self._repo.postpone_account(conn, account.id, self._policy.auth_hold_until(since, now))
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
        run: Run,
        session: SmtpSession,
        message: ClaimedMessage,
        mail: Mail,
        then: Mail | None,
    ) -> Steps[DeliveryResult]:
        """Send `message` (as `mail`, with `then`'s envelope pipelined along) and record its
        result now, before `then` is sent: its outcome never waits for the next message's.

        With PIPELINING the answers are awaited as Waits, so one thread serves many
        connections; a server without it answers command by command, so the whole send runs
        as a Call in a helper thread."""
        started = utcnow()
        try:
            if session.pipelining:
                outcome = yield from _pipelined(session, mail, then)
            else:
                outcome = yield Call(
                    session.send, mail.envelope_from, mail.recipients, mail.raw, then=then
                )
        except errors.PostroomError as exc:
            # Broke before the final ".": nothing was accepted; try again later.
            return self._results.defer(run, message, exc.message)
        updates, detail, code = recipient_updates(
            message.recipients, outcome.recipients, outcome.data, outcome.unknown
        )
        outcome_name = "unknown" if outcome.unknown else ""
        return self._results.record(run, message, updates, outcome_name, code, detail, started)

    def _sendmail(self, run: Run, message: ClaimedMessage) -> Steps[DeliveryResult]:
        """The local MTA's binary: exit 0 sent, EX_TEMPFAIL deferred, anything else failed."""
        out = run.account.outgoing
        assert out is not None
        started = utcnow()
        try:
            result = yield Call(
                send_via_sendmail,
                out.sendmail_path,
                message.raw,
                [r.address for r in message.recipients],
                sender=message.envelope_from,
                timeout_s=out.timeout_s,
            )
        except errors.PostroomError as exc:
            return self._results.defer(run, message, exc.message)
        status = (
            RecipientStatus.SENT
            if result.exit_status == 0
            else RecipientStatus.DEFERRED
            if result.exit_status == EX_TEMPFAIL
            else RecipientStatus.FAILED
        )
        detail = f"sendmail exit status {result.exit_status}: {result.output}".strip()
        updates = [RecipientUpdate(r.id, status, None, "", detail) for r in message.recipients]
        return self._results.record(run, message, updates, "", None, detail, started)

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


def _mail(message: ClaimedMessage) -> Mail:
    return Mail(message.envelope_from, tuple(r.address for r in message.recipients), message.raw)


def _pipelined(session: SmtpSession, mail: Mail, then: Mail | None) -> Steps[SendOutcome]:
    """SmtpSession.send in steps: wait for the envelope's replies, then for the answer to the
    final "." (a wait that times out makes the message unknown, as a read that times out)."""
    session.announce(mail)  # the first message of a connection: its envelope goes now
    if (sock := session.waiting_on()) is not None:
        try:
            yield Wait(sock, session.endpoint.timeout_s)
        except errors.ProtocolTimeout as exc:
            raise session.fail(exc) from exc
    early = session.start(mail, then=then)
    if early is not None:
        return early
    if (sock := session.waiting_on()) is not None:
        try:
            yield Wait(sock, session.endpoint.timeout_s)
        except errors.ProtocolTimeout as exc:
            return session.give_up(exc.message)
    return session.finish()
