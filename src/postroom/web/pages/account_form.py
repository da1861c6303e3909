"""Create and edit an account; "Test before saving" runs the staged probes on unsaved values.

Without JavaScript the Test button posts the form and the page comes back with the results;
with it, app.js posts the same fields to /accounts/check and shows each protocol's steps as its
probe finishes (NDJSON, one result per line), without reloading the page.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.responses import Response

from postroom.domain.accounts import Account, AccountDraft, Security, default_port
from postroom.domain.checks import CheckResult
from postroom.errors import Conflict, InvalidInput
from postroom.services.accounts import Verifier
from postroom.web import forms
from postroom.web.core import Viewer, ViewerDep, WebRoute, redirect, render

router = APIRouter(route_class=WebRoute)

# For the port suggestion in app.js: protocol → security → conventional port.
PORTS = {p: {s.value: default_port(p, s) for s in Security} for p in ("smtp", "imap", "pop3")}


async def _form(request: Request) -> dict[str, str]:
    data = await request.form()
    return {k: v for k, v in data.items() if isinstance(v, str)}


def protocols_of(account: AccountDraft | Account) -> list[str]:
    """The probes an account (saved or not) calls for, outgoing first."""
    found = []
    if account.outgoing is not None:
        found.append(account.outgoing.transport.value)
    if account.incoming is not None:
        found.append(account.incoming.protocol.value)
    return found


def _page(
    request: Request,
    viewer: Viewer,
    values: Mapping[str, str],
    *,
    account_id: int | None = None,
    errors: Mapping[str, str] | None = None,
    error: str = "",
    results: list[CheckResult] | None = None,
    status: int = 200,
) -> Response:
    account = viewer.container.accounts.get(viewer.actor, account_id) if account_id else None
    return render(
        request,
        "accounts/form.html",
        status=status,
        account=account,
        v=values,
        errors=errors or {},
        error=error,
        results=results,
        ports=json.dumps(PORTS),
        labels=forms.LABELS,
        manageable_teams=[
            t
            for t in viewer.container.people.list_teams(viewer.actor)
            if viewer.actor.can_manage(t.id)
        ],
    )


@router.get("/accounts/new")
def new_form(request: Request, viewer: ViewerDep) -> Response:
    values = forms.blank()
    if viewer.session.team_id is not None:
        values["team_id"] = str(viewer.session.team_id)
    return _page(request, viewer, values)


@router.get("/accounts/{account_id:int}/edit")
def edit_form(request: Request, viewer: ViewerDep, account_id: int) -> Response:
    account = viewer.container.accounts.get(viewer.actor, account_id)
    return _page(request, viewer, forms.from_account(account), account_id=account_id)


@router.post("/accounts/new")
async def create(request: Request, viewer: ViewerDep) -> Response:
    return await _submit(request, viewer, None)


@router.post("/accounts/{account_id:int}/edit")
async def update(request: Request, viewer: ViewerDep, account_id: int) -> Response:
    return await _submit(request, viewer, account_id)


async def _submit(request: Request, viewer: Viewer, account_id: int | None) -> Response:
    form = await _form(request)
    values, errors = forms.parse(form)
    echo = forms.echo(form)
    if errors:
        return _page(request, viewer, echo, account_id=account_id, errors=errors, status=422)
    c, actor = viewer.container, viewer.actor
    try:
        if form.get("intent") == "test":
            results = _check(viewer, values, account_id)
            return _page(request, viewer, echo, account_id=account_id, results=results)
        verify: Verifier | None = c.checks.verify_draft if form.get("verify_on_save") else None
        if account_id is None:
            account = c.accounts.create(actor, forms.to_draft(values), verify=verify)
        else:
            account = c.accounts.update(actor, account_id, values, verify=verify)
    except InvalidInput as exc:
        return _page(
            request,
            viewer,
            echo,
            account_id=account_id,
            errors=exc.fields,
            error=exc.message,
            status=422,
        )
    except Conflict as exc:
        return _page(request, viewer, echo, account_id=account_id, error=exc.message, status=409)
    viewer.session.notify(f"{account.name} saved.")
    return redirect(f"/accounts/{account.id}")


def _check(viewer: Viewer, values: Mapping[str, Any], account_id: int | None) -> list[CheckResult]:
    draft = forms.to_draft(values)
    return viewer.container.checks.check_values(
        viewer.actor, draft, account_id, set(protocols_of(draft))
    )


@router.post("/accounts/check")
async def check_values(request: Request, viewer: ViewerDep) -> Response:
    """The live test: one JSON object per line — `{"errors": {...}}` when the values cannot be
    tested, else `{"protocols": [...]}` followed by one CheckResult per protocol as it ends."""
    form = await _form(request)
    account = form.get("account_id", "")
    account_id = int(account) if account.isdigit() else None
    values, errors = forms.parse(form)
    return StreamingResponse(
        _stream(viewer, values, errors, account_id), media_type="application/x-ndjson"
    )


def _stream(
    viewer: Viewer, values: dict[str, Any], errors: dict[str, str], account_id: int | None
) -> Iterator[str]:
    if errors:
        yield json.dumps({"errors": errors}) + "\n"
        return
    try:
        draft = forms.to_draft(values)
        protocols = protocols_of(draft)
        if not protocols:
            raise InvalidInput(fields={"has_outgoing": "add an outgoing or incoming server"})
        yield json.dumps({"protocols": protocols}) + "\n"
        for protocol in protocols:
            (result,) = viewer.container.checks.check_values(
                viewer.actor, draft, account_id, {protocol}
            )
            yield json.dumps(result.to_dict(), default=str) + "\n"
    except InvalidInput as exc:
        yield json.dumps({"errors": exc.fields or {"": exc.message}}) + "\n"


@router.post("/accounts/{account_id:int}/check")
async def check_saved(request: Request, viewer: ViewerDep, account_id: int) -> Response:
    """Test connection of a saved account: the live stream for app.js (X-CSRF-Token header),
    or, from a plain form, the account's test page with every result."""
    c, actor = viewer.container, viewer.actor
    account = c.accounts.get(actor, account_id)
    protocols = protocols_of(account)
    if "x-csrf-token" in request.headers:
        return StreamingResponse(
            _stream_saved(viewer, account_id, protocols), media_type="application/x-ndjson"
        )
    results = c.checks.check_account(actor, account_id, set(protocols))
    return render(request, "accounts/checked.html", account=account, results=results)


def _stream_saved(viewer: Viewer, account_id: int, protocols: list[str]) -> Iterator[str]:
    yield json.dumps({"protocols": protocols}) + "\n"
    for protocol in protocols:
        for result in viewer.container.checks.check_account(viewer.actor, account_id, {protocol}):
            yield json.dumps(result.to_dict(), default=str) + "\n"
