"""Accounts: the list with stage tabs, the account page made of widgets, and its actions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Request
from starlette.responses import Response

from postroom.domain.accounts import Account, AccountQuery, AccountStatus
from postroom.errors import Conflict, InvalidInput
from postroom.storage.audit import TimelineEvent
from postroom.web.core import ViewerDep, WebRoute, back, redirect, render

router = APIRouter(route_class=WebRoute)

PAGE_SIZE = 25
TIMELINE_SIZE = 100
STAGES = (AccountStatus.ACTIVE, AccountStatus.INACTIVE, AccountStatus.DELETED)
TRANSITIONS = ("activate", "deactivate", "restore")


def health_badge(health: dict[str, Any]) -> tuple[str, str]:
    """(css kind, text) for an account's health: ok, failing since …, or never tested."""
    if health.get("failing_since"):
        return "bad", f"failing since {health['failing_since']:%Y-%m-%d %H:%M}"
    if health.get("last_ok_at"):
        return "ok", "ok"
    return "none", "never tested"


@dataclass(frozen=True, slots=True)
class FetchState:
    """The incoming health of an account as the page shows it: a badge and, when fetching is
    off or failing, the reason in words."""

    kind: str  # css class: ok | bad | off | none
    text: str
    reason: str = ""


def fetch_state(status: Mapping[str, Any]) -> FetchState:
    """FetchingService.status() → badge. Only the fetcher switches incoming off on its own
    (after repeated auth failures or a long failure streak), so a disabled part with a failure
    record was switched off automatically."""
    auth, failures = (
        status.get("consecutive_auth_failures") or 0,
        status.get("consecutive_failures") or 0,
    )
    since, error = status.get("fetch_failing_since"), status.get("last_fetch_error") or ""
    if not status.get("enabled", True):
        if auth:
            why = f"{auth} consecutive authentication failure{'s' if auth != 1 else ''}"
        elif since:
            why = f"failing since {since:%Y-%m-%d %H:%M}"
        else:
            return FetchState("off", "fetching switched off")
        return FetchState(
            "off", "switched off automatically", why + (f": {error}" if error else "")
        )
    if since:
        plural = "s" if failures != 1 else ""
        return FetchState(
            "bad",
            f"failing since {since:%Y-%m-%d %H:%M}",
            f"{failures} failed run{plural}: {error}",
        )
    if status.get("last_fetch_ok_at"):
        return FetchState("ok", "ok")
    return FetchState("none", "never fetched")


def timeline_page(
    events: Sequence[TimelineEvent], size: int
) -> tuple[list[TimelineEvent], datetime | None]:
    """The first `size` of `events` (fetched with limit size + 1) and the `before` cursor of the
    next page, or None on the last page. `before` is strict, so events sharing the boundary
    time move to the next page together instead of being skipped between pages."""
    if len(events) <= size:
        return list(events), None
    shown, boundary = list(events[:size]), events[size - 1].at
    if events[size].at == boundary:
        kept = [e for e in shown if e.at != boundary]
        if kept:  # else one instant holds a whole page: show it, the rest of it is skipped
            return kept, boundary + timedelta(microseconds=1)
    return shown, boundary


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


def _cursor(before: str) -> datetime | None:
    if not before:
        return None
    try:
        cursor = datetime.fromisoformat(before)
    except ValueError:
        raise InvalidInput(fields={"before": "must be an ISO date and time"}) from None
    return cursor if cursor.tzinfo else cursor.replace(tzinfo=UTC)


@router.get("/accounts/{account_id:int}")
def account_page(
    request: Request, viewer: ViewerDep, account_id: int, before: str = ""
) -> Response:
    c, actor = viewer.container, viewer.actor
    account = c.accounts.get(actor, account_id)
    health = c.accounts.health(account_id)
    events = c.audit.timeline(actor, account_id, limit=TIMELINE_SIZE + 1, before=_cursor(before))
    timeline, older = timeline_page(events, TIMELINE_SIZE)
    fetch = c.fetching.status(account_id) if account.incoming else None
    return render(
        request,
        "accounts/detail.html",
        account=account,
        health=health,
        badge=health_badge(health),
        fetch=fetch,
        fetch_badge=fetch_state(fetch) if fetch is not None else None,
        last_sent=c.outbox.last_sent(actor, account_id) if account.outgoing else None,
        older=older.isoformat() if older else "",
        paged=bool(before),
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


@router.post("/accounts/{account_id:int}/fetching/enable")
def enable_fetching(viewer: ViewerDep, account_id: int) -> Response:
    """Switch fetching back on after the fetcher switched it off (fix the cause first: the
    failure counters stay, so one more authentication failure switches it off again)."""
    account = viewer.container.accounts.update(
        viewer.actor, account_id, {"incoming": {"enabled": True}}
    )
    viewer.session.notify(f"Fetching for {account.name} is switched on again.")
    return redirect(f"/accounts/{account_id}")


@router.post("/accounts/{account_id:int}/test-email")
def send_test_email(
    viewer: ViewerDep, account_id: int, to: Annotated[str, Form()] = ""
) -> Response:
    result = viewer.container.checks.send_test_email(viewer.actor, account_id, to.strip() or None)
    if not result.ok:
        raise Conflict(f"the test e-mail was not sent: {result.error_message} {result.hint}")
    viewer.session.notify(f"Test e-mail sent{' to ' + to if to else ''}.")
    return redirect(f"/accounts/{account_id}")
