"""Fetching incoming mail: the schedule, one fetcher per account, cursors, after-import actions,
health and auto-disable.

Never lose, never duplicate:
- the raw message is on disk and its row committed before the cursor moves past it; the cursor,
  the rows and the lease renewal share one transaction per batch. A crash re-fetches at most one
  batch, and the per-account dedupe key absorbs the copies;
- after-import actions (mark seen, move, delete) run only after that commit;
- one fetcher per account: a lease on account_incoming (claimed with SKIP LOCKED on PostgreSQL),
  renewed with every batch, so a fetch that lost its lease stops instead of racing another.
"""

from __future__ import annotations

import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from postroom.domain.accounts import (
    Account,
    AccountStatus,
    AfterImport,
    Incoming,
    IncomingProtocol,
)
from postroom.domain.inbox import (
    Cursor,
    CursorAction,
    FetchReport,
    Origin,
    StoreOutcome,
    before_start,
    disable_reason,
    is_new_uid,
    plan_folder,
    since_search_date,
)
from postroom.errors import AuthFailed, Conflict, FetchError, ProtocolError
from postroom.protocols.endpoints import Endpoint, NetworkPolicy
from postroom.protocols.imap import BATCH_BYTES, FetchedMessage, FolderState, ImapMailbox
from postroom.protocols.pop3 import Pop3Mailbox
from postroom.services.accounts import AccountService
from postroom.services.fetch_run import (
    Interrupted,
    Progress,
    Run,
    after_import,
    aware,
    chunks,
    raw_size,
    report,
)
from postroom.services.fetch_sessions import ImapSessions
from postroom.services.inbox import InboxService
from postroom.services.log import SystemLogService
from postroom.storage.fetch_schedule import FetchScheduleRepository
from postroom.storage.inbox import InboxRepository, NewMessage
from postroom.storage.types import utcnow

_POP3_FOLDER = ""  # POP3's one mailbox; its cursor row only marks the first fetch as done
_CLOCK_SKEW = timedelta(minutes=5)


def _last_uid(box: ImapMailbox, folder: str, state: FolderState) -> int:
    """The highest UID in use: UIDNEXT - 1, or searched when the server did not say."""
    if state.uidnext is not None:
        return state.uidnext - 1
    return max(box.uids_since(folder, date(1970, 1, 1)), default=0)


class FetchingService:
    def __init__(
        self,
        engine: sa.Engine,
        accounts: AccountService,
        inbox: InboxService,
        inbox_repo: InboxRepository,
        schedule: FetchScheduleRepository,
        log: SystemLogService,
        policy: NetworkPolicy,
        *,
        batch_size: int = 100,
        lease_s: int = 120,
        auto_disable_auth_failures: int = 5,
        auto_disable_after_hours: float = 24.0,
        concurrency: int = 4,
    ) -> None:
        self._engine = engine
        self._accounts = accounts
        self._inbox = inbox
        self._repo = inbox_repo
        self._schedule = schedule
        self._log = log
        self._policy = policy
        self._batch_size = batch_size
        self._lease = timedelta(seconds=lease_s)
        self._max_auth_failures = auto_disable_auth_failures
        self._max_failing_hours = auto_disable_after_hours
        self._concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None
        self._sessions = ImapSessions(policy)
        self._running = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # scheduling ----------------------------------------------------------------------------

    def run_due(self, worker_name: str, *, wait: bool = False, limit: int | None = None) -> int:
        """Claim the accounts that are due and fetch them; returns how many were claimed.

        By default the fetches run in a small thread pool so the caller's loop (the worker's
        tick) is not held up by a large mailbox; `wait=True` runs them here, one after another.
        Kept connections idle for too long are logged out here as well.
        """
        self._sessions.expire()
        with self._lock:
            free = self._concurrency - self._running if not wait else self._concurrency
            free = min(free, limit) if limit is not None else free
            if free <= 0 or self._stop.is_set():
                return 0
            now = utcnow()
            with self._engine.begin() as conn:
                ids = self._schedule.claim_due(conn, worker_name, now, now + self._lease, free)
            if not wait:
                self._running += len(ids)
        for account_id in ids:
            if wait:
                self._fetch_leased(account_id, worker_name, None)
            else:
                self._executor().submit(self._background, account_id, worker_name)
        return len(ids)

    def fetch_account(self, account_id: int, progress: Progress | None = None) -> FetchReport:
        """Fetch one account now (API, CLI). Conflict when it is inactive or already being
        fetched, or has no enabled incoming part."""
        account = self._accounts.get_system(account_id)
        if account.status is not AccountStatus.ACTIVE:
            raise Conflict(f"account {account.name!r} is {account.status.value}: not fetched")
        if account.incoming is None:
            raise Conflict(f"account {account.name!r} has no incoming server")
        if not account.incoming.enabled:
            raise Conflict(f"fetching is switched off for account {account.name!r}")
        owner = f"manual-{uuid.uuid4().hex[:12]}"
        now = utcnow()
        with self._engine.begin() as conn:
            if not self._schedule.acquire(conn, account_id, owner, now, now + self._lease):
                raise Conflict(f"account {account.name!r} is being fetched right now")
        return self._fetch_leased(account_id, owner, progress, account)

    def shutdown(self, wait: bool = True) -> None:
        """Stop claiming; running fetches end after their current batch (their lease is
        released, so another worker picks the account up on schedule); log out of the kept
        IMAP connections."""
        self._stop.set()
        if self._pool is not None:
            self._pool.shutdown(wait=wait)
        self._sessions.close()

    def status(self, account_id: int) -> dict[str, Any]:
        """The fetch schedule and health columns of one account."""
        with self._engine.begin() as conn:
            return self._schedule.status(conn, account_id)

    # one run -------------------------------------------------------------------------------

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="fetch")
        return self._pool

    def _background(self, account_id: int, owner: str) -> None:
        try:
            self._fetch_leased(account_id, owner, None)
        finally:
            with self._lock:
                self._running -= 1

    def _fetch_leased(
        self,
        account_id: int,
        owner: str,
        progress: Progress | None,
        account: Account | None = None,
    ) -> FetchReport:
        """Fetch an account whose lease we hold (`account`: as just loaded, if it was);
        record health; release the lease."""
        run = Run(account_id, owner, progress)
        error, auth = "", False
        try:
            if account is None:
                account, endpoint = self._accounts.incoming_endpoint(account_id)
            else:
                endpoint = self._accounts.receiving_endpoint(account)
            assert account.incoming is not None  # the endpoint functions raise otherwise
            if account.incoming.protocol is IncomingProtocol.IMAP:
                self._fetch_imap(run, account.incoming, endpoint)
            else:
                self._fetch_pop3(run, account.incoming, endpoint)
        except AuthFailed as exc:
            error, auth = exc.message, True
        except Interrupted as exc:
            # Not a failure of the account: hand it back at once, health untouched.
            self._log.write("Incoming", "info", exc.message, account_id=account_id, action="fetch")
            with self._engine.begin() as conn:
                self._schedule.release(conn, account_id, owner, utcnow())
            return report(run, account, exc.message, auth=False, reason=None)
        except Exception as exc:  # any failure must be recorded, never kill the worker
            error = getattr(exc, "message", "") or f"{type(exc).__name__}: {exc}"
        return self._finish(run, account, error, auth)

    def _finish(self, run: Run, account: Account | None, error: str, auth: bool) -> FetchReport:
        now = utcnow()
        c = run.counts
        fetched = c[StoreOutcome.STORED] + c[StoreOutcome.QUARANTINED]
        interval = account.incoming.fetch_interval_s if account and account.incoming else 300
        with self._engine.begin() as conn:
            health = self._schedule.health(conn, run.account_id)
            health = health.after_failure(now, auth=auth) if error else health.after_success()
            reason = (
                disable_reason(
                    health,
                    now,
                    max_auth_failures=self._max_auth_failures,
                    max_failing_hours=self._max_failing_hours,
                )
                if error
                else None
            )
            self._schedule.record_run(
                conn,
                run.account_id,
                health,
                now=now,
                ok=not error,
                count=fetched,
                error=error,
                disable=reason is not None,
            )
            summary = (
                f"fetched {fetched} new message(s): {c[StoreOutcome.STORED]} stored, "
                f"{c[StoreOutcome.QUARANTINED]} quarantined, {c[StoreOutcome.DUPLICATE]} "
                f"duplicate(s), {c[StoreOutcome.SKIPPED]} before the import start"
            )
            self._log.write(
                "Incoming",
                "error" if error else "info",
                f"fetch failed: {error} ({summary})" if error else summary,
                account_id=run.account_id,
                action="fetch",
                conn=conn,
            )
            if auth and account is not None and account.incoming is not None:
                source = "IMAP Auth" if account.incoming.protocol.value == "imap" else "POP3 Auth"
                self._log.write(source, "error", error, account_id=run.account_id, conn=conn)
            if reason is not None:
                name = account.name if account else str(run.account_id)
                message = f"fetching switched off for account {name!r}: {reason} ({error})"
                self._log.write(
                    "Incoming",
                    "error",
                    message,
                    account_id=run.account_id,
                    action="auto_disable",
                    conn=conn,
                )
                self._log.notify("error", message, account_id=run.account_id, conn=conn)
            # Back off while failing (up to 8 intervals) with ±10 % jitter so that accounts
            # added together do not all fetch in the same second forever.
            factor = min(2 ** max(health.consecutive_failures - 1, 0), 8)
            delay = interval * factor * random.uniform(0.9, 1.1)
            self._schedule.release(conn, run.account_id, run.owner, now + timedelta(seconds=delay))
        return report(run, account, error, auth=auth, reason=reason)

    def _commit(
        self,
        run: Run,
        batch: list[NewMessage],
        *,
        cursor: Cursor | None = None,
        uidls: tuple[list[str], list[str]] = ([], []),
        skipped: int = 0,
    ) -> list[StoreOutcome]:
        """Store a batch, move the cursor / remember UIDLs and renew the lease: one transaction."""
        now = utcnow()
        with self._engine.begin() as conn:
            if not self._schedule.renew(conn, run.account_id, run.owner, now + self._lease):
                raise FetchError("the fetch lease was lost to another fetcher; stopping")
            outcomes = self._inbox.record(conn, batch)
            if cursor is not None:
                self._repo.save_cursor(conn, run.account_id, cursor, now)
            imported, passed = uidls
            self._repo.add_uidls(conn, run.account_id, imported, imported=True, now=now)
            self._repo.add_uidls(conn, run.account_id, passed, imported=False, now=now)
        run.add(outcomes + [StoreOutcome.SKIPPED] * skipped)
        if self._stop.is_set():
            raise Interrupted("fetch interrupted by shutdown; the rest is fetched next time")
        return outcomes

    # IMAP ----------------------------------------------------------------------------------

    def _fetch_imap(self, run: Run, incoming: Incoming, endpoint: Endpoint) -> None:
        """Sync the account's folders over its kept connection (services/fetch_sessions.py)
        or a new one, and keep the connection for next time. A kept connection that the
        server has meanwhile dropped fails at its first command: then once more, afresh."""
        box, reused = self._sessions.take(run.account_id, endpoint)
        try:
            try:
                self._sync_imap(run, box, incoming)
            except ProtocolError:
                if not reused or run.handled:
                    raise
                box.close()
                run.folders.clear()
                run.total = None
                box, _ = self._sessions.take(run.account_id, endpoint)
                self._sync_imap(run, box, incoming)
        except BaseException:
            box.close()  # a no-op when already closed
            raise
        self._sessions.keep(run.account_id, box)

    def _sync_imap(self, run: Run, box: ImapMailbox, incoming: Incoming) -> None:
        """Each folder: batches fetched, prepared (raw kept, parsed), then committed with the
        cursor. With the default keep-on-server the next batch is already asked for (IMAP
        pipelining) while this one is parsed and stored, so the server's work overlaps ours in
        one thread; the other after-import actions talk to the server after each commit, so
        there the next batch is asked for only then.

        Measured on bench/inbound.py: pipelining the next FETCH did better than reading it
        ahead in a second thread, which contended with the parser for the GIL (as did a
        writer thread for the commits)."""
        keep = after_import(incoming) is AfterImport.KEEP
        for folder in incoming.folders or ("INBOX",):
            run.folders.append(folder)
            state = box.select(folder, readonly=keep)  # keeping changes nothing: EXAMINE
            cursor, start = self._imap_cursor(run, box, state, folder, incoming)
            if state.uidnext is not None:
                run.total = (run.total or 0) + max(state.uidnext - 1 - cursor.last_uid, 0)
            messages = box.fetch_after(
                folder, cursor.last_uid, self._batch_size, ahead=1 if keep else 0
            )
            for fetched in chunks(messages, self._batch_size, raw_size, BATCH_BYTES):
                batch, keep_uids, skipped, cursor = self._prepare_imap(run, fetched, cursor, start)
                self._commit(run, batch, cursor=cursor, skipped=skipped)
                self._after_import_imap(box, incoming, keep_uids)  # none when pipelined

    def _prepare_imap(
        self, run: Run, fetched: list[FetchedMessage], cursor: Cursor, start: datetime | None
    ) -> tuple[list[NewMessage], list[int], int, Cursor]:
        """The new messages of a fetched batch prepared for storing, their UIDs, how many were
        before the import start, and the cursor past the batch (UIDs at or below the cursor
        are dropped)."""
        batch, keep_uids, skipped, last_uid = [], [], 0, cursor.last_uid
        for msg in fetched:
            if not is_new_uid(msg.uid, cursor.last_uid):
                continue
            last_uid = max(last_uid, msg.uid)
            internaldate = aware(msg.internaldate)
            if before_start(internaldate, start):
                skipped += 1
                continue
            origin = Origin(
                folder=cursor.folder,
                uid=msg.uid,
                uidvalidity=cursor.uidvalidity,
                flags=tuple(msg.flags),
                internaldate=internaldate,
            )
            batch.append(self._inbox.prepare(run.account_id, msg.raw, origin))
            keep_uids.append(msg.uid)
        cursor = Cursor(cursor.folder, cursor.uidvalidity, last_uid, cursor.start_at)
        return batch, keep_uids, skipped, cursor

    def _imap_cursor(
        self, run: Run, box: ImapMailbox, state: FolderState, folder: str, incoming: Incoming
    ) -> tuple[Cursor, datetime | None]:
        """The cursor to continue from (existing, first-fetch start point, or a resync) and the
        INTERNALDATE before which messages are skipped in this run.

        The date filter applies only when the cursor is new: later, a new UID is new mail,
        whatever its date (a message moved into the folder keeps its old INTERNALDATE).
        """
        with self._engine.begin() as conn:
            plan = plan_folder(self._repo.cursors(conn, run.account_id, folder), state.uidvalidity)
        if plan.action is CursorAction.CONTINUE and plan.cursor is not None:
            return plan.cursor, None
        now = utcnow()
        if plan.action is CursorAction.RESYNC and plan.cursor is not None:
            cursor = Cursor(folder, state.uidvalidity, 0, plan.cursor.start_at)
            note = (
                f"folder {folder!r}: UIDVALIDITY changed from {plan.cursor.uidvalidity} to "
                f"{state.uidvalidity}; resynchronising (already stored messages are skipped)"
            )
            self._log.write("Incoming", "warning", note, account_id=run.account_id, action="resync")
        elif incoming.fetch_since is None:
            # First fetch, "from now on": everything already there is left alone. The start
            # (used only by a later resync) allows for the server's clock being a little behind.
            cursor = Cursor(
                folder, state.uidvalidity, _last_uid(box, folder, state), now - _CLOCK_SKEW
            )
        else:
            uids = box.uids_since(folder, since_search_date(incoming.fetch_since).date())
            last = min(uids) - 1 if uids else _last_uid(box, folder, state)
            cursor = Cursor(folder, state.uidvalidity, last, incoming.fetch_since)
        with self._engine.begin() as conn:
            self._repo.save_cursor(conn, run.account_id, cursor, now)
        return cursor, cursor.start_at

    @staticmethod
    def _after_import_imap(box: ImapMailbox, incoming: Incoming, uids: list[int]) -> None:
        if not uids:
            return
        action = after_import(incoming)
        if action is AfterImport.MARK_SEEN:
            box.mark_seen(uids)
        elif action is AfterImport.MOVE and incoming.move_to_folder:
            box.move(uids, incoming.move_to_folder)
        elif action is AfterImport.DELETE:
            box.delete(uids)

    # POP3 ----------------------------------------------------------------------------------

    def _fetch_pop3(self, run: Run, incoming: Incoming, endpoint: Endpoint) -> None:
        delete = not incoming.keep_on_server or incoming.after_import is AfterImport.DELETE
        with Pop3Mailbox(endpoint, policy=self._policy) as box:
            listing = box.uidl()
            now = utcnow()
            with self._engine.begin() as conn:
                seen = self._repo.seen_uidls(conn, run.account_id)
                first = not self._repo.cursors(conn, run.account_id, _POP3_FOLDER)
                if first:
                    cursor = Cursor(_POP3_FOLDER, 0, 0, incoming.fetch_since)
                    self._repo.save_cursor(conn, run.account_id, cursor, now)
                    if incoming.fetch_since is None:
                        # "From now on": remember what is there and import none of it.
                        fresh = [u for _, u in listing if u not in seen]
                        self._repo.add_uidls(conn, run.account_id, fresh, imported=False, now=now)
                        seen.update(dict.fromkeys(fresh, False))
            # POP3 has no arrival date: on the first run only, fetch_since is read from Date.
            start = incoming.fetch_since if first else None
            new = [(num, uidl) for num, uidl in listing if uidl not in seen]
            run.total = len(new)
            for chunk in chunks(iter(new), self._batch_size):
                batch, imported, passed = [], [], []
                for num, uidl in chunk:
                    raw = box.retrieve(num)
                    prepared = self._inbox.prepare(run.account_id, raw, Origin(uidl=uidl))
                    sent = prepared.parsed.date if prepared.parsed else None
                    if before_start(sent, start):
                        passed.append(uidl)
                        continue
                    batch.append(prepared)
                    imported.append(uidl)
                self._commit(run, batch, uidls=(imported, passed), skipped=len(passed))
                seen.update(dict.fromkeys(imported, True))
            if delete:
                # Also messages imported by an earlier run that died before QUIT, whose DELE
                # was rolled back by the server (RFC 1939 §6: DELE takes effect at QUIT).
                for num, uidl in listing:
                    if seen.get(uidl):
                        box.delete(num)
            box.quit()
