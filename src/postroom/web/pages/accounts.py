"""Accounts: the list with stage tabs, the account page made of widgets, and its actions."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from postroom.domain.accounts import Account, AccountQuery, AccountStatus
from postroom.errors import Conflict, InvalidInput
from postroom.web.core import ViewerDep, WebRoute, back, redirect, render

router = APIRouter(route_class=WebRoute)

PAGE_SIZE = 25
STAGES = (AccountStatus.ACTIVE, AccountStatus.INACTIVE, AccountStatus.DELETED)
TRANSITIONS = ("activate", "deactivate", "restore")


def health_badge(health: dict[str, Any]) -> tuple[str, str]:
    """(css kind, text) for an account's health: ok, failing since …, or never tested."""
    if health.get("failing_since"):
        return "bad", f"failing since {health['failing_since']:%Y-%m-%d %H:%M}"
    if health.get("last_ok_at"):
        return "ok", "ok"
    return "none", "never tested"


def audit_changes(changes: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, old, new) as text, leaving out fields a create merely set to empty."""
    rows = []
    for name, change in changes.items():
        old, new = change if isinstance(change, list) and len(change) == 2 else (None, change)
        if old is None and new in (None, "", [], False):
            continue
        rows.append((name, "" if old is None else str(old), "—" if new is None else str(new)))
    return rows


@router.get("/accounts")
def account_list(
    request: Request,
    viewer: ViewerDep,
    stage: AccountStatus = AccountStatus.ACTIVE,
    q: str = "",
    team: str = "",
    page: int = 1,
) -> Response:
    team_id = int(team) if team.isdigit() else viewer.session.team_id if team == "" else None
    page = max(page, 1)
    query = AccountQuery(
        status=stage, team_id=team_id, search=q, offset=(page - 1) * PAGE_SIZE, limit=PAGE_SIZE
    )
    accounts = viewer.container.accounts
    result = accounts.list(viewer.actor, query)
    health = accounts.health_of([a.id for a in result.items])
    rows = [(a, health_badge(health.get(a.id, {}))) for a in result.items]
    return render(
        request,
        "accounts/list.html",
        rows=rows,
        page=page,
        pages=max(1, -(-result.total // PAGE_SIZE)),
        total=result.total,
        stage=stage,
        stages=STAGES,
        q=q,
        team_filter=team_id,
        team_names={t.id: t.name for t in viewer.teams},
    )


@router.get("/accounts/{account_id:int}")
def account_page(request: Request, viewer: ViewerDep, account_id: int) -> Response:
    c, actor = viewer.container, viewer.actor
    account = c.accounts.get(actor, account_id)
    health = c.accounts.health(account_id)
    timeline = c.audit.timeline(actor, account_id, limit=100)
    return render(
        request,
        "accounts/detail.html",
        account=account,
        health=health,
        badge=health_badge(health),
        can_manage=actor.can_manage(account.team_id),
        comments=c.audit.comments(actor, account_id),
        audit=[
            (e, audit_changes(e.changes))
            for e in c.audit.list(actor, account_id=account_id, limit=20).items
        ],
        timeline=timeline,
        counts=c.outbox.counts(actor, account_id) if account.outgoing else {},
        team_name=_team_name(viewer, account),
        checks=c.checks.history(actor, account_id, 5),
    )


def _team_name(viewer: ViewerDep, account: Account) -> str:
    if account.team_id is None:
        return "System-wide"
    names = {t.id: t.name for t in viewer.teams}
    return names.get(account.team_id, f"team {account.team_id}")


@router.post("/accounts/{account_id:int}/status/{action}")
def change_status(viewer: ViewerDep, account_id: int, action: str) -> Response:
    if action not in TRANSITIONS:
        raise InvalidInput(fields={"action": f"must be one of {', '.join(TRANSITIONS)}"})
    account = viewer.container.accounts.transition(viewer.actor, account_id, action)
    viewer.session.notify(f"{account.name} is now {account.status.value}.")
    return redirect(f"/accounts/{account_id}")


@router.get("/accounts/{account_id:int}/delete")
def confirm_delete(request: Request, viewer: ViewerDep, account_id: int) -> Response:
    """Seed 004: before deleting, show what goes and what stays."""
    c, actor = viewer.container, viewer.actor
    account = c.accounts.get(actor, account_id)
    counts = c.outbox.counts(actor, account_id) if account.outgoing else {}
    pending = sum(counts.get(s, 0) for s in ("queued", "deferred", "sending"))
    return render(request, "accounts/delete.html", account=account, pending=pending)


@router.post("/accounts/{account_id:int}/delete")
def delete(viewer: ViewerDep, account_id: int) -> Response:
    account = viewer.container.accounts.transition(viewer.actor, account_id, "delete")
    viewer.session.notify(f"{account.name} was deleted. It can be restored from the Deleted tab.")
    return redirect(f"/accounts/{account_id}")


@router.post("/accounts/{account_id:int}/default/{direction}")
def set_default(
    viewer: ViewerDep, account_id: int, direction: Literal["outgoing", "incoming"]
) -> Response:
    account = viewer.container.accounts.set_default(viewer.actor, account_id, direction)
    scope = "system" if account.team_id is None else "team"
    viewer.session.notify(f"{account.name} is now the {scope} default for {direction} mail.")
    return redirect(f"/accounts/{account_id}")


@router.post("/accounts/{account_id:int}/comments")
def add_comment(viewer: ViewerDep, account_id: int, body: Annotated[str, Form()] = "") -> Response:
    viewer.container.audit.add_comment(viewer.actor, account_id, body)
    viewer.session.notify("Comment added.")
    return redirect(f"/accounts/{account_id}#activity")


@router.post("/accounts/{account_id:int}/sending/{action}")
def pause_or_resume(
    request: Request, viewer: ViewerDep, account_id: int, action: Literal["pause", "resume"]
) -> Response:
    account = viewer.container.outbox.set_paused(viewer.actor, account_id, action == "pause")
    viewer.session.notify(f"Sending for {account.name} {action}d.")
    return redirect(back(request, f"/accounts/{account_id}"))


@router.post("/accounts/{account_id:int}/test-email")
def send_test_email(
    viewer: ViewerDep, account_id: int, to: Annotated[str, Form()] = ""
) -> Response:
    result = viewer.container.checks.send_test_email(viewer.actor, account_id, to.strip() or None)
    if not result.ok:
        raise Conflict(f"the test e-mail was not sent: {result.error_message} {result.hint}")
    viewer.session.notify(f"Test e-mail sent{' to ' + to if to else ''}.")
    return redirect(f"/accounts/{account_id}")
