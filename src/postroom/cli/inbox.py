"""`postroom fetch ACCOUNT` (with a progress bar) and `postroom inbox list|show|quarantine`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from postroom.cli.common import (
    EXIT_FAILED,
    cli_actor,
    console,
    emit,
    fail,
    get_container,
    translated_errors,
)
from postroom.domain.inbox import InboxMessage, InboxQuery, SortField

app = typer.Typer(help="Fetched mail: list, show, quarantine.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
AccountArg = Annotated[str, typer.Argument(metavar="ACCOUNT", help="Account id or name.")]
COLUMNS = ["id", "date", "from", "subject", "size", "attachments"]
Q_COLUMNS = ["id", "account_id", "fetched_at", "size", "reason"]


def _row(m: InboxMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "account_id": m.account_id,
        "date": m.date or m.fetched_at,
        "fetched_at": m.fetched_at,
        "from": m.from_.email if m.from_ else "",
        "subject": m.subject,
        "size": m.size,
        "attachments": "yes" if m.has_attachments else "",
        "reason": m.quarantine_reason,
    }


def _aware(value: datetime | None, name: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        fail(f"--{name} needs a time zone, e.g. 2026-12-01T00:00+00:00", 2)
    return value


def fetch(account: AccountArg, as_json: JsonOpt = False) -> None:
    """Fetch an account's incoming mail now; exit status 1 when the fetch failed."""
    with translated_errors():
        container = get_container()
        target = container.accounts.find(cli_actor(), account)
        with Progress(
            TextColumn(f"fetching {target.name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
            disable=as_json,
        ) as bar:
            task = bar.add_task("fetch", total=None)

            def progress(done: int, total: int | None) -> None:
                bar.update(task, completed=done, total=max(total or done, done))

            report = container.fetching.fetch_account(target.id, progress)
        data = {
            "ok": report.ok,
            "stored": report.stored,
            "quarantined": report.quarantined,
            "duplicates": report.duplicates,
            "skipped": report.skipped,
            "error": report.error,
            "disabled_reason": report.disabled_reason,
        }
        emit(data, as_json)
        if not report.ok:
            raise typer.Exit(EXIT_FAILED)


@app.command("list")
def list_messages(
    account: AccountArg,
    sender: Annotated[str, typer.Option(help="Sender name or address contains.")] = "",
    subject: Annotated[str, typer.Option(help="Subject contains.")] = "",
    since: Annotated[datetime | None, typer.Option(help="Date on or after (with zone).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Date before (with zone).")] = None,
    attachments: Annotated[
        bool | None, typer.Option("--attachments/--no-attachments", help="Has attachments.")
    ] = None,
    sort: Annotated[SortField, typer.Option(help="Sort field (newest first).")] = SortField.DATE,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: JsonOpt = False,
) -> None:
    """An account's fetched messages, newest first."""
    with translated_errors():
        container = get_container()
        actor = cli_actor()
        account_id = container.accounts.find(actor, account).id
        query = InboxQuery(
            sender=sender,
            subject=subject,
            since=_aware(since, "since"),
            until=_aware(until, "until"),
            has_attachments=attachments,
            sort=sort,
            limit=limit,
            offset=offset,
        )
        page = container.inbox.list(actor, account_id, query)
        rows = list(page.items) if as_json else [_row(m) for m in page.items]
        emit(rows, as_json, COLUMNS, f"Messages ({len(page.items)} of {page.total})")


@app.command("show")
def show(
    message_id: Annotated[int, typer.Argument(metavar="ID", help="Message id.")],
    raw: Annotated[bool, typer.Option("--raw", help="Write the raw .eml to stdout.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """One message: headers, text body, attachments (or the raw bytes with --raw)."""
    with translated_errors():
        container = get_container()
        if raw:
            out = typer.get_binary_stream("stdout")
            for chunk in container.inbox.raw(cli_actor(), message_id).chunks:
                out.write(chunk)
            return
        message = container.inbox.get(cli_actor(), message_id)
        if as_json:
            emit(message, True)
            return
        emit(_row(message) | {"to": ", ".join(a.email for a in message.to)}, False)
        for att in message.attachments:
            console.print(
                f"  attachment {att.index}: {att.filename} ({att.content_type}, {att.size} B)"
            )
        console.print()
        console.print(message.text_body or "(no text body)", markup=False, highlight=False)


@app.command("quarantine")
def quarantine(
    account: Annotated[str | None, typer.Option(help="Only this account (id or name).")] = None,
    reparse: Annotated[int | None, typer.Option(help="Re-parse this message id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Unparseable or oversized messages, with the reason; --reparse ID tries one again."""
    with translated_errors():
        container = get_container()
        actor = cli_actor()
        if reparse is not None:
            message = container.inbox.reparse(actor, reparse)
            emit(
                {"id": message.id, "status": message.status, "reason": message.quarantine_reason},
                as_json,
            )
            return
        account_id = None if account is None else container.accounts.find(actor, account).id
        query = InboxQuery(sort=SortField.FETCHED, limit=limit)
        page = container.inbox.quarantine(actor, query, account_id)
        rows = list(page.items) if as_json else [_row(m) for m in page.items]
        emit(rows, as_json, Q_COLUMNS, f"Quarantine ({len(page.items)} of {page.total})")
