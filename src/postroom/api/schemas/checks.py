"""Connection-check schemas: the unsaved form values to test (CheckValuesIn, reusing the account
form's OutgoingIn / IncomingIn), and results, history and bulk jobs going out.

Results carry the redacted transcript (redacted when captured, never here) and no secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field

from postroom.api.schemas.accounts import Address, Id, IncomingIn, Name, OutgoingIn
from postroom.api.schemas.common import Public, Strict
from postroom.domain.accounts import Account, AccountDraft
from postroom.domain.checks import CheckResult, ErrorClass, StepOutcome
from postroom.domain.checks import Field as FormField
from postroom.services.check_bulk import CheckJob
from postroom.storage.checks import CheckRecord

Protocol = Literal["smtp", "sendmail", "imap", "pop3"]
Protocols = Annotated[list[Protocol], Field(max_length=4)]


class CheckRequest(Strict):
    """Which of a saved account's servers to test; left out: all configured ones."""

    protocols: Protocols | None = None


class CheckValuesIn(Strict):
    """Form values to test before saving. With `account_id` (editing), a blank password means
    the stored one. Name and e-mail may still be empty: only the parts tested must be valid."""

    account_id: Id | None = None
    protocols: Protocols | None = None
    name: Name = ""
    email: Address = ""
    team_id: Id | None = None
    debug: bool = False
    outgoing: OutgoingIn | None = None
    incoming: IncomingIn | None = None

    def to_draft(self) -> AccountDraft:
        return AccountDraft(
            name=self.name,
            email=self.email,
            team_id=self.team_id,
            debug=self.debug,
            outgoing=self.outgoing.to_draft() if self.outgoing else None,
            incoming=self.incoming.to_draft() if self.incoming else None,
        )


class TestEmailIn(Strict):
    """Where to send the test message; left out: the company address, else the account's."""

    to: Address = ""


class StepPublic(Public):
    name: str
    outcome: StepOutcome
    elapsed_ms: int
    message: str


class TlsPublic(Public):
    version: str
    cipher: str
    subject: str
    issuer: str
    sans: list[str]
    not_after: datetime | None
    days_left: int | None
    verified: bool


class TranscriptLinePublic(Public):
    direction: Literal["client", "server", "info"]
    ms: int
    text: str


class CheckResultPublic(Public):
    """One probe: its steps, the verdict, and for a failure the class, sentence, hint and the
    form field at fault."""

    protocol: str
    ok: bool
    steps: list[StepPublic]
    error_class: ErrorClass | None
    error_message: str
    hint: str
    field: FormField | None
    tls: TlsPublic | None
    transcript: list[TranscriptLinePublic]
    warnings: list[str]

    @classmethod
    def of(cls, result: CheckResult) -> CheckResultPublic:
        return cls.model_validate(result.to_dict())


class ChecksPublic(Public):
    ok: bool = Field(description="true when every probe passed")
    results: list[CheckResultPublic]

    @classmethod
    def of(cls, results: list[CheckResult]) -> ChecksPublic:
        return cls(
            ok=all(r.ok for r in results), results=[CheckResultPublic.of(r) for r in results]
        )


class CheckRecordPublic(Public):
    id: int
    account_id: int | None
    protocol: str
    ok: bool
    error_class: str | None
    created_at: datetime
    created_by: str
    result: CheckResultPublic

    @classmethod
    def of(cls, record: CheckRecord) -> CheckRecordPublic:
        return cls.model_validate(
            {
                **{k: getattr(record, k) for k in cls.model_fields if k != "result"},
                "result": record.result,
            }
        )


class CheckHistoryPublic(Public):
    items: list[CheckRecordPublic]


class AccountChecksPublic(Public):
    account_id: int
    account_name: str
    ok: bool
    results: list[CheckResultPublic]

    @classmethod
    def of(cls, account: Account, results: list[CheckResult]) -> AccountChecksPublic:
        return cls(
            account_id=account.id,
            account_name=account.name,
            ok=all(r.ok for r in results),
            results=[CheckResultPublic.of(r) for r in results],
        )


class CheckJobStarted(Public):
    job_id: str
    status_url: str


class CheckJobPublic(Public):
    """A bulk check: progress while running, every account's results once done."""

    id: str
    status: Literal["running", "done", "failed"]
    started_by: str
    started_at: datetime
    finished_at: datetime | None
    total: int
    done: int
    ok_count: int
    failed_count: int
    error: str
    results: list[AccountChecksPublic]

    @classmethod
    def of(cls, job: CheckJob) -> CheckJobPublic:
        accounts = [AccountChecksPublic.of(a, r) for a, r in job.results]
        return cls(
            id=job.id,
            status=job.status,
            started_by=job.started_by,
            started_at=job.started_at,
            finished_at=job.finished_at,
            total=job.total,
            done=job.done,
            ok_count=sum(a.ok for a in accounts),
            failed_count=sum(not a.ok for a in accounts),
            error=job.error,
            results=accounts,
        )
