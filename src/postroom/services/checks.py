"""Test: connection checks of saved accounts and of unsaved form values, the test e-mail,
validate-on-save, and the bulk check of every active account.

Every check leaves three traces: a row in the check history, a system-log entry (source
"SMTP Auth" / "IMAP Auth" / "POP3 Auth"; with the account's debug flag on, the transcript is
kept with it) and — for a saved account — its health fields. Transcripts are redacted when the
protocols layer captures them, so what is stored and returned is already free of secrets.

Every probe goes through the container's NetworkPolicy (SSRF guard: a refused destination is a
`destination_refused` result, not a timeout) and runs under `deadline_s`; the bulk check
(services/check_bulk.py) runs one probe per task of a bounded thread pool, so its wall time is
about ⌈unresponsive servers / concurrency⌉ deadlines.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

import sqlalchemy as sa

from postroom.domain.accounts import (
    Account,
    AccountDraft,
    AccountQuery,
    AccountStatus,
    AuthMode,
    Incoming,
    IncomingDraft,
    IncomingProtocol,
    Outgoing,
    OutgoingDraft,
    Security,
    Transport,
    default_port,
    validate_draft,
)
from postroom.domain.checks import CheckResult, Step, StepOutcome
from postroom.domain.people import Actor
from postroom.errors import Conflict, Forbidden, InvalidInput, PostroomError
from postroom.protocols.endpoints import Endpoint, NetworkPolicy, Secret
from postroom.protocols.imap import probe_imap
from postroom.protocols.pop3 import probe_pop3
from postroom.protocols.sendmail import probe_sendmail, send_via_sendmail
from postroom.protocols.smtp import probe_smtp, send_test_message
from postroom.services.accounts import AccountService
from postroom.services.check_bulk import CheckJob, JobRegistry, Progress, run_grouped
from postroom.services.log import SystemLogService
from postroom.storage.accounts import Direction, draft_of
from postroom.storage.checks import CheckRecord, CheckRepository
from postroom.storage.types import utcnow

PROTOCOLS = ("smtp", "sendmail", "imap", "pop3")
OUTGOING = frozenset({"smtp", "sendmail"})
LOG_SOURCES = {
    "smtp": "SMTP Auth",
    "sendmail": "SMTP Auth",
    "imap": "IMAP Auth",
    "pop3": "POP3 Auth",
}
MAX_HISTORY = 200


@dataclass(frozen=True, slots=True)
class CheckOptions:
    """What the checks need from the settings."""

    deadline_s: float = 20.0
    concurrency: int = 32
    company_email: str = ""
    cafile: str | None = None


@dataclass(frozen=True, slots=True)
class _Plan:
    """One probe to run: the protocol and what it needs; `problem` when it cannot run."""

    protocol: str
    endpoint: Endpoint | None = None
    sendmail_path: str = ""
    sender: str = ""
    recipient: str = ""
    folders: tuple[str, ...] = ("INBOX",)
    warning: str = ""
    problem: str = ""


def _looks_like_address(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(at and local and domain) and not any(c in value for c in " \r\n\0")


def _failed(protocol: str, message: str, hint: str = "") -> CheckResult:
    """A check that could not even start (e.g. settings that cannot be probed)."""
    step = Step("prepare", StepOutcome.FAILED, 0, message)
    return CheckResult(protocol, False, (step,), error_message=message, hint=hint)


def failing_step(result: CheckResult) -> str:
    """The name of the step that failed ('' when none did)."""
    return next((s.name for s in result.steps if s.outcome is StepOutcome.FAILED), "")


def sentence(result: CheckResult, subject: str) -> str:
    """The plain one-line summary used in the system log and in validate-on-save errors."""
    label = result.protocol.upper()
    if result.ok:
        extra = f" ({'; '.join(result.warnings)})" if result.warnings else ""
        return f"{label} check of {subject} succeeded{extra}"
    hint = f" — {result.hint}" if result.hint else ""
    step = failing_step(result)
    where = f" at step {step!r}" if step else ""
    return f"{label} check of {subject} failed{where}: {result.error_message}{hint}"


class CheckService:
    def __init__(
        self,
        engine: sa.Engine,
        repo: CheckRepository,
        accounts: AccountService,
        log: SystemLogService,
        policy: NetworkPolicy,
        options: CheckOptions,
    ) -> None:
        self._engine = engine
        self._repo = repo
        self._accounts = accounts
        self._log = log
        self._policy = policy
        self._options = options
        self._jobs = JobRegistry()

    # -- saved accounts ------------------------------------------------------------------------

    def check_account(
        self, actor: Actor, account_id: int, protocols: Collection[str] | None = None
    ) -> list[CheckResult]:
        """Probe a saved account's servers (all configured ones when `protocols` is None).

        Anyone who can read the account may test it; per-employee outgoing authentication uses
        the caller's own stored credentials (InvalidInput when they have none).
        """
        account = self._accounts.get(actor, account_id)
        plans = self._plans(draft_of(account), account.id, protocols, actor.user_id, strict=True)
        results = [self._run(plan) for plan in plans]
        self._write(
            account.id,
            results,
            actor.email,
            "check",
            repr(account.name),
            debug=account.debug,
            health=True,
        )
        return results

    def send_test_email(self, actor: Actor, account_id: int, to: str | None = None) -> CheckResult:
        """Really send a short message through the account (seed 004's "send test e-mail").

        The recipient defaults to the company address setting, else the account's own address.
        """
        account = self._accounts.get(actor, account_id)
        out = account.outgoing
        if out is None:
            raise Conflict(f"account {account.name!r} has no outgoing server")
        recipient = (to or "").strip() or self._options.company_email or account.email
        if not _looks_like_address(recipient):
            raise InvalidInput(fields={"to": "is not an e-mail address"})
        sender = out.from_address or account.email
        draft = draft_of(account)
        assert draft.outgoing is not None
        plan = self._outgoing_plan(draft, draft.outgoing, account.id, actor.user_id, True)
        if plan.endpoint is None:
            result = self._sendmail_test(out.sendmail_path, sender, recipient, account.name)
        else:
            result = send_test_message(
                plan.endpoint,
                policy=self._policy,
                sender=sender,
                recipient=recipient,
                deadline_s=self._options.deadline_s,
                subject=f"Postroom test message from {account.name}",
            )
            result = _with_warning(result, plan.warning)
        subject = f"{account.name!r} to {recipient}"
        self._write(
            account.id,
            [result],
            actor.email,
            "test-email",
            subject,
            debug=account.debug,
            health=True,
        )
        return result

    def history(self, actor: Actor, account_id: int, limit: int = 50) -> list[CheckRecord]:
        """The account's newest checks, newest first."""
        if not 1 <= limit <= MAX_HISTORY:
            raise InvalidInput(fields={"limit": f"must be between 1 and {MAX_HISTORY}"})
        self._accounts.get(actor, account_id)  # access check
        with self._engine.begin() as conn:
            return self._repo.history(conn, account_id, limit=limit)

    # -- unsaved form values -------------------------------------------------------------------

    def check_values(
        self,
        actor: Actor,
        draft: AccountDraft,
        account_id: int | None = None,
        protocols: Collection[str] | None = None,
    ) -> list[CheckResult]:
        """Probe form values before they are saved ("test before saving").

        With `account_id`, a blank password means the stored one — so only those who may change
        that account may do this (otherwise it would send its password to any host they name).
        Without it, the caller must be allowed to create accounts for the draft's team.
        """
        if account_id is not None:
            current = self._accounts.get(actor, account_id)
            if not actor.can_manage(current.team_id):
                raise Forbidden("you cannot change this account")
        elif not actor.can_manage(draft.team_id):
            raise Forbidden("you cannot create accounts for this team")
        if draft.outgoing and draft.outgoing.transport is Transport.SENDMAIL and not actor.is_admin:
            # Probing runs the named binary on this host: only admins may name one.
            raise Forbidden("only admins can test a sendmail path")
        results = self._probe_values(draft, account_id, protocols, actor.user_id)
        self._write(
            account_id,
            results,
            actor.email,
            "check-values",
            _unsaved(draft),
            debug=draft.debug,
            health=False,
        )
        return results

    def verify_draft(self, draft: AccountDraft, account_id: int | None) -> None:
        """The validate-on-save Verifier (AccountService.create/update with verify=...).

        Probes every configured part; raises InvalidInput naming the form field at fault
        (e.g. "outgoing.password") with the failing step, the sentence and the hint.
        """
        results = self._probe_values(draft, account_id, None, None)
        self._write(
            account_id, results, "", "verify", _unsaved(draft), debug=draft.debug, health=False
        )
        problems: dict[str, str] = {}
        for result in results:
            if result.ok:
                continue
            part = "outgoing" if result.protocol in OUTGOING else "incoming"
            key = f"{part}.{result.field.value}" if result.field else part
            problems.setdefault(key, sentence(result, "the " + part + " server"))
        if problems:
            raise InvalidInput(
                "the account was not saved: a connection check failed", fields=problems
            )

    # -- bulk ----------------------------------------------------------------------------------

    def check_all(
        self, actor: Actor, concurrency: int | None = None, progress: Progress | None = None
    ) -> list[tuple[Account, list[CheckResult]]]:
        """Check every active account the actor can read, `concurrency` probes at a time (one
        pool task per probe), each under the deadline. Incoming parts switched off (e.g.
        auto-disabled after failed logins) are skipped: a bulk run must not cause lockouts."""
        workers = concurrency or self._options.concurrency
        if not 1 <= workers <= 512:
            raise InvalidInput(fields={"concurrency": "must be between 1 and 512"})
        accounts = self._active_accounts(actor)
        plans = [
            self._plans(draft_of(a), a.id, None, actor.user_id, strict=False) for a in accounts
        ]
        lock, done = threading.Lock(), [0]

        def finish(index: int, results: list[CheckResult]) -> None:
            if results:
                account = accounts[index]
                self._write(
                    account.id,
                    results,
                    actor.email,
                    "check-all",
                    repr(account.name),
                    debug=account.debug,
                    health=True,
                )
            with lock:
                done[0] += 1
                if progress is not None:
                    progress(done[0], len(accounts))

        outcome = run_grouped(plans, self._run, finish, workers)
        return list(zip(accounts, outcome, strict=True))

    def start_check_all(self, actor: Actor) -> str:
        """Run `check_all` as a background job; returns its id (see `job`). One at a time per
        process (Conflict otherwise); jobs live in this process's memory."""
        return self._jobs.start(actor, lambda progress: self.check_all(actor, None, progress))

    def job(self, actor: Actor, job_id: str) -> CheckJob:
        """A snapshot of a bulk job; visible to the actor who started it and to admins."""
        return self._jobs.get(actor, job_id)

    def _probe_values(
        self,
        draft: AccountDraft,
        account_id: int | None,
        protocols: Collection[str] | None,
        user_id: int | None,
    ) -> list[CheckResult]:
        """Validate the parts to be probed (form values may be half filled in), then probe."""
        wanted = _wanted(draft.outgoing, draft.incoming, protocols)
        parts = {"outgoing" if p in OUTGOING else "incoming" for p in wanted}
        problems = {k: v for k, v in validate_draft(draft).items() if k.partition(".")[0] in parts}
        if problems:
            raise InvalidInput(fields=problems)
        plans = self._plans(draft, account_id, protocols, user_id, strict=True)
        return [self._run(plan) for plan in plans]

    # -- building and running probes -----------------------------------------------------------

    def _plans(
        self,
        draft: AccountDraft,
        account_id: int | None,
        protocols: Collection[str] | None,
        user_id: int | None,
        *,
        strict: bool,
    ) -> list[_Plan]:
        """What to probe for `draft` (a saved account's is `draft_of(account)`).

        strict=False (bulk): settings that cannot be probed become a failed result instead of
        an error, and per-employee accounts are probed without authentication.
        """
        incoming = draft.incoming if draft.incoming and (strict or draft.incoming.enabled) else None
        plans: list[_Plan] = []
        for protocol in _wanted(draft.outgoing, incoming, protocols):
            try:
                if draft.outgoing is not None and protocol in OUTGOING:
                    plans.append(
                        self._outgoing_plan(draft, draft.outgoing, account_id, user_id, strict)
                    )
                elif incoming is not None:
                    password = self._password(incoming, account_id, "incoming")
                    port = incoming.port or default_port(protocol, incoming.security)
                    endpoint = self._endpoint(
                        incoming.host, port, incoming, incoming.username, password
                    )
                    plans.append(_Plan(protocol, endpoint, folders=incoming.folders))
            except PostroomError as exc:
                if strict:
                    raise
                plans.append(_Plan(protocol, problem=exc.message))
        return plans

    def _outgoing_plan(
        self,
        draft: AccountDraft,
        out: OutgoingDraft,
        account_id: int | None,
        user_id: int | None,
        strict: bool,
    ) -> _Plan:
        if out.transport is Transport.SENDMAIL:
            return _Plan("sendmail", sendmail_path=out.sendmail_path)
        warning, username, password = "", out.username, None
        if out.auth_mode is AuthMode.NONE:
            username = ""
        elif out.auth_mode is AuthMode.CENTRAL or out.password:
            password = self._password(out, account_id, "outgoing")
        elif account_id is not None and user_id is not None and strict:
            # The caller's own per-employee login (InvalidInput when they stored none).
            _, own = self._accounts.outgoing_endpoint(account_id, sender_user_id=user_id)
            username, password = own.username, own.password_value
        else:
            # Per-employee logins belong to people: the system actor (CLI, worker) and the bulk
            # run have none, so they test the server without authenticating, and say so.
            username, warning = (
                "",
                "authentication not tested: the account uses per-employee logins",
            )
        port = out.port or default_port("smtp", out.security)
        sender = out.from_address or draft.email
        return _Plan(
            "smtp",
            self._endpoint(out.host, port, out, username, password),
            sender=sender,
            recipient=self._options.company_email or draft.email or sender,
            warning=warning,
        )

    def _run(self, plan: _Plan) -> CheckResult:
        deadline, policy = self._options.deadline_s, self._policy
        if plan.problem:
            return _failed(plan.protocol, plan.problem, "fix the account's settings")
        if plan.protocol == "sendmail":
            return probe_sendmail(plan.sendmail_path, timeout_s=deadline)
        assert plan.endpoint is not None
        if plan.protocol == "imap":
            return probe_imap(
                plan.endpoint, policy=policy, folders=plan.folders, deadline_s=deadline
            )
        if plan.protocol == "pop3":
            return probe_pop3(plan.endpoint, policy=policy, deadline_s=deadline)
        result = probe_smtp(
            plan.endpoint,
            policy=policy,
            sender=plan.sender,
            recipient=plan.recipient,
            deadline_s=deadline,
        )
        return _with_warning(result, plan.warning)

    def _password(
        self, part: OutgoingDraft | IncomingDraft, account_id: int | None, direction: Direction
    ) -> str | None:
        """The typed password, else (blank, on an existing account) the stored one."""
        if part.password:
            return part.password
        return None if account_id is None else self._accounts.stored_password(account_id, direction)

    def _endpoint(
        self,
        host: str,
        port: int,
        part: OutgoingDraft | IncomingDraft,
        username: str,
        password: str | None,
    ) -> Endpoint:
        timeout_s, helo = 30.0, ""
        if isinstance(part, OutgoingDraft):
            timeout_s, helo = part.timeout_s, part.helo_name
        return Endpoint(
            host=host,
            port=port,
            security=Security(part.security),
            verify_certificate=part.verify_certificate,
            username=username,
            password=Secret(password) if password else None,
            timeout_s=timeout_s,
            helo_name=helo,
            cafile=self._options.cafile,
        )

    def _sendmail_test(self, path: str, sender: str, recipient: str, name: str) -> CheckResult:
        message = EmailMessage()
        message["From"], message["To"] = sender, recipient
        message["Subject"] = f"Postroom test message from {name}"
        message["Date"] = formatdate(localtime=True)
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        message.set_content("This is a test message sent by Postroom to check the account.\n")
        try:
            outcome = send_via_sendmail(
                path,
                message.as_bytes(),
                [recipient],
                sender=sender,
                timeout_s=self._options.deadline_s,
            )
        except PostroomError as exc:
            return _failed("sendmail", exc.message, "check the sendmail path")
        if outcome.ok:
            step = Step("send", StepOutcome.OK, 0, outcome.output or "accepted (exit status 0)")
            return CheckResult("sendmail", True, (step,))
        text = f"{path} exited with status {outcome.exit_status}: {outcome.output}".rstrip(": ")
        step = Step("send", StepOutcome.FAILED, 0, text)
        return CheckResult("sendmail", False, (step,), error_message=text)

    # -- recording -----------------------------------------------------------------------------

    def _active_accounts(self, actor: Actor) -> list[Account]:
        found: list[Account] = []
        while True:
            page = self._accounts.list(
                actor,
                AccountQuery(status=AccountStatus.ACTIVE, offset=len(found), limit=500, sort="id"),
            )
            found.extend(page.items)
            if not page.items or len(found) >= page.total:
                return found

    def _write(
        self,
        account_id: int | None,
        results: list[CheckResult],
        user: str,
        action: str,
        subject: str,
        *,
        debug: bool,
        health: bool,
    ) -> None:
        """History rows and log entries in one transaction; then, when `health` (the saved
        settings were probed), the account's health fields."""
        now = utcnow()
        with self._engine.begin() as conn:
            for result in results:
                self._repo.add(conn, result, account_id=account_id, created_by=user, now=now)
                self._log.write(
                    LOG_SOURCES[result.protocol],
                    "info" if result.ok else "error",
                    sentence(result, subject),
                    account_id=account_id,
                    user=user,
                    action=action,
                    transcript=result.to_dict()["transcript"] if debug else None,
                    conn=conn,
                )
        if health and account_id is not None:
            failures = [f"{r.protocol}: {r.error_message}" for r in results if not r.ok]
            self._accounts.record_check(account_id, not failures, "; ".join(failures), now)


def _unsaved(draft: AccountDraft) -> str:
    return f"{draft.name!r} (unsaved values)" if draft.name else "unsaved settings"


def _wanted(
    outgoing: Outgoing | OutgoingDraft | None,
    incoming: Incoming | IncomingDraft | None,
    protocols: Collection[str] | None,
) -> list[str]:
    """The protocols to probe, in PROTOCOLS order; InvalidInput for ones not configured."""
    configured: list[str] = []
    if outgoing is not None:
        configured.append("sendmail" if outgoing.transport is Transport.SENDMAIL else "smtp")
    if incoming is not None:
        configured.append("pop3" if incoming.protocol is IncomingProtocol.POP3 else "imap")
    if protocols is None:
        return configured
    unknown = sorted(set(protocols) - set(PROTOCOLS))
    if unknown:
        raise InvalidInput(
            fields={"protocols": f"unknown: {', '.join(unknown)}; use {', '.join(PROTOCOLS)}"}
        )
    missing = sorted(set(protocols) - set(configured))
    if missing:
        have = ", ".join(configured) or "no server"
        raise InvalidInput(
            fields={"protocols": f"not configured here: {', '.join(missing)} (configured: {have})"}
        )
    return [p for p in PROTOCOLS if p in protocols]


def _with_warning(result: CheckResult, warning: str) -> CheckResult:
    if not warning or warning in result.warnings:
        return result
    return replace(result, warnings=(*result.warnings, warning))
