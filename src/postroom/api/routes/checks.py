"""Connection checks over HTTP: test a saved account, test unsaved form values (the UI's "test
before saving"), send a test e-mail, read an account's check history, and run the bulk check as
a background job. Results are 200 whether the probe passed or not: `ok` and each result's
`error_class` say what happened; only bad input or access is an error response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, status

from postroom.api.deps import ActorDep, ContainerDep
from postroom.api.schemas.accounts import INT32_MAX
from postroom.api.schemas.checks import (
    CheckHistoryPublic,
    CheckJobPublic,
    CheckJobStarted,
    CheckRecordPublic,
    CheckRequest,
    CheckResultPublic,
    ChecksPublic,
    CheckValuesIn,
    TestEmailIn,
)
from postroom.services.checks import MAX_HISTORY

router = APIRouter(prefix="/api/v1", tags=["checks"])

AccountId = Annotated[int, Path(ge=1, le=INT32_MAX)]


@router.post("/accounts/{account_id}/checks")
def check_account(
    container: ContainerDep, actor: ActorDep, account_id: AccountId, body: CheckRequest
) -> ChecksPublic:
    """Probe the saved account's servers, step by step, with the redacted transcript."""
    protocols = set(body.protocols) if body.protocols is not None else None
    return ChecksPublic.of(container.checks.check_account(actor, account_id, protocols))


@router.get("/accounts/{account_id}/checks")
def check_history(
    container: ContainerDep,
    actor: ActorDep,
    account_id: AccountId,
    limit: Annotated[int, Query(ge=1, le=MAX_HISTORY)] = 50,
) -> CheckHistoryPublic:
    """The account's checks, newest first."""
    records = container.checks.history(actor, account_id, limit)
    return CheckHistoryPublic(items=[CheckRecordPublic.of(r) for r in records])


@router.post("/accounts/{account_id}/test-email")
def send_test_email(
    container: ContainerDep, actor: ActorDep, account_id: AccountId, body: TestEmailIn
) -> CheckResultPublic:
    """Really send a short message through the account, with the transcript."""
    return CheckResultPublic.of(container.checks.send_test_email(actor, account_id, body.to))


@router.post("/checks")
def check_values(container: ContainerDep, actor: ActorDep, body: CheckValuesIn) -> ChecksPublic:
    """Probe unsaved form values; with account_id, a blank password uses the stored one."""
    protocols = set(body.protocols) if body.protocols is not None else None
    results = container.checks.check_values(actor, body.to_draft(), body.account_id, protocols)
    return ChecksPublic.of(results)


@router.post("/checks/jobs", status_code=status.HTTP_202_ACCEPTED)
def start_check_job(container: ContainerDep, actor: ActorDep) -> CheckJobStarted:
    """Check every active account the caller can see, in the background."""
    job_id = container.checks.start_check_all(actor)
    return CheckJobStarted(job_id=job_id, status_url=f"/api/v1/checks/jobs/{job_id}")


@router.get("/checks/jobs/{job_id}")
def check_job(
    container: ContainerDep,
    actor: ActorDep,
    job_id: Annotated[str, Path(max_length=64)],
) -> CheckJobPublic:
    """Progress of a bulk check, and every account's results once it is done."""
    return CheckJobPublic.of(container.checks.job(actor, job_id))
