"""/api/v1/accounts: configure accounts, move them through their lifecycle, set defaults, and
read their comments, timeline and audit trail. Access is decided by AccountService (a team's
accounts are invisible — 404 — to members of other teams)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from postroom.api.deps import ActorDep, ContainerDep, Offset
from postroom.api.schemas.accounts import (
    INT32_MAX,
    AccountCreate,
    AccountPage,
    AccountPublic,
    AccountUpdate,
)
from postroom.api.schemas.audit import (
    AuditEntryPublic,
    AuditPage,
    CommentCreate,
    CommentPublic,
    TimelineEventPublic,
)
from postroom.api.schemas.common import AwareInstant
from postroom.domain.accounts import Account, AccountQuery, AccountStatus
from postroom.errors import InvalidInput
from postroom.services.accounts import Verifier
from postroom.wiring import Container

router = APIRouter(prefix="/api/v1/accounts", tags=["accounts"])

AccountId = Annotated[int, Path(ge=1, le=INT32_MAX)]
Verify = Annotated[
    bool, Query(description="probe the servers first; nothing is saved if a probe fails")
]


def _public(container: Container, account: Account) -> AccountPublic:
    return AccountPublic.of(account, container.accounts.health(account.id))


def _verifier(container: Container, verify: bool) -> Verifier | None:
    """The checks layer's verifier, looked up at call time (it is wired in by another area)."""
    if not verify:
        return None
    checks = getattr(container, "checks", None)
    if checks is None:
        raise InvalidInput(fields={"verify": "verification is not available"})
    verifier: Verifier = checks.verify_draft
    return verifier


@router.get("")
def list_accounts(
    container: ContainerDep,
    actor: ActorDep,
    offset: Offset = 0,
    limit: int = 50,
    status: Literal["active", "inactive", "deleted", "all"] = "active",
    team_id: Annotated[int | None, Query(ge=1, le=INT32_MAX)] = None,
    q: Annotated[str, Query(max_length=200, description="name, e-mail or label contains")] = "",
    sort: Annotated[str, Query(description="name, created_at, updated_at or id; -x: desc")] = (
        "name"
    ),
) -> AccountPage:
    """The accounts the caller can see, one page at a time (status `all` for every stage)."""
    query = AccountQuery(
        status=None if status == "all" else AccountStatus(status),
        team_id=team_id,
        search=q,
        offset=offset,
        limit=limit,
        sort=sort,
    )
    page = container.accounts.list(actor, query)
    health = container.accounts.health_of([a.id for a in page.items])
    return AccountPage.of(page, lambda a: AccountPublic.of(a, health.get(a.id)))


@router.post("", status_code=201)
def create_account(
    body: AccountCreate,
    container: ContainerDep,
    actor: ActorDep,
    response: Response,
    verify: Verify = False,
) -> AccountPublic:
    account = container.accounts.create(actor, body.to_draft(), verify=_verifier(container, verify))
    response.headers["Location"] = f"{router.prefix}/{account.id}"
    return _public(container, account)


@router.get("/{account_id}")
def get_account(account_id: AccountId, container: ContainerDep, actor: ActorDep) -> AccountPublic:
    return _public(container, container.accounts.get(actor, account_id))


@router.patch("/{account_id}")
def update_account(
    account_id: AccountId,
    body: AccountUpdate,
    container: ContainerDep,
    actor: ActorDep,
    verify: Verify = False,
) -> AccountPublic:
    """Change only the fields sent; an empty password keeps the stored one."""
    account = container.accounts.update(
        actor, account_id, body.changes(), verify=_verifier(container, verify)
    )
    return _public(container, account)


# One route per action (not /{account_id}/{action}), so that other areas' routes under
# /accounts/{id}/… are never shadowed by a catch-all.
@router.post("/{account_id}/activate")
def activate(account_id: AccountId, container: ContainerDep, actor: ActorDep) -> AccountPublic:
    return _public(container, container.accounts.transition(actor, account_id, "activate"))


@router.post("/{account_id}/deactivate")
def deactivate(account_id: AccountId, container: ContainerDep, actor: ActorDep) -> AccountPublic:
    """Stop sending and fetching; everything fetched stays."""
    return _public(container, container.accounts.transition(actor, account_id, "deactivate"))


@router.post("/{account_id}/delete")
def delete(account_id: AccountId, container: ContainerDep, actor: ActorDep) -> AccountPublic:
    """Soft delete: the account and its history stay, restorable."""
    return _public(container, container.accounts.transition(actor, account_id, "delete"))


@router.post("/{account_id}/restore")
def restore(account_id: AccountId, container: ContainerDep, actor: ActorDep) -> AccountPublic:
    """Back from deleted, as inactive (nothing starts sending by surprise)."""
    return _public(container, container.accounts.transition(actor, account_id, "restore"))


@router.post("/{account_id}/set-default")
def set_default(
    account_id: AccountId,
    direction: Literal["outgoing", "incoming"],
    container: ContainerDep,
    actor: ActorDep,
) -> AccountPublic:
    """Make the account its team's (or the system's) default; the old default is unset in the
    same transaction."""
    return _public(container, container.accounts.set_default(actor, account_id, direction))


@router.get("/{account_id}/comments")
def list_comments(
    account_id: AccountId, container: ContainerDep, actor: ActorDep
) -> list[CommentPublic]:
    return [CommentPublic.model_validate(c) for c in container.audit.comments(actor, account_id)]


@router.post("/{account_id}/comments", status_code=201)
def add_comment(
    account_id: AccountId, body: CommentCreate, container: ContainerDep, actor: ActorDep
) -> CommentPublic:
    return CommentPublic.model_validate(container.audit.add_comment(actor, account_id, body.body))


@router.get("/{account_id}/timeline")
def timeline(
    account_id: AccountId,
    container: ContainerDep,
    actor: ActorDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    before: Annotated[AwareInstant | None, Query(description="page back: older than")] = None,
) -> list[TimelineEventPublic]:
    """Audit entries, comments and system-log events of the account, newest first."""
    events = container.audit.timeline(actor, account_id, limit, before)
    return [TimelineEventPublic.model_validate(e) for e in events]


@router.get("/{account_id}/audit")
def account_audit(
    account_id: AccountId,
    container: ContainerDep,
    actor: ActorDep,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    page = container.audit.list(actor, account_id=account_id, offset=offset, limit=limit)
    return AuditPage.of(page, AuditEntryPublic.model_validate)
