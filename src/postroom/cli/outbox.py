"""`postroom outbox list|show|resend|cancel|pause|resume`, `postroom send`, `postroom route
explain` and `postroom worker`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from postroom.cli.common import (
    cli_actor,
    console,
    emit,
    get_container,
    read_stdin_text,
    translated_errors,
)
from postroom.domain.accounts import SendMode
from postroom.domain.outbox import Attachment, Draft, MessageStatus, OutboxMessage, OutboxQuery
from postroom.errors import InvalidInput

app = typer.Typer(
    help="Outgoing mail: the queue, the sent archive and the failed journal.", no_args_is_help=True
)
route_app = typer.Typer(help="Which account sends, and why.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
COLUMNS = [
    "id",
    "status",
    "account_id",
    "subject",
    "attempts",
    "next_attempt_at",
    "sent_at",
    "last_error",
]


def _row(m: OutboxMessage) -> dict[str, Any]:
    return {
        "id": m.id,
        "status": m.status,
        "account_id": m.account_id,
        "subject": m.subject,
        "attempts": m.attempts,
        "next_attempt_at": m.next_attempt_at,
        "sent_at": m.sent_at,
        "last_error": m.last_error[:60],
        "message_id": m.message_id,
    }


@app.command("list")
def list_messages(
    status: Annotated[
        list[MessageStatus] | None,
        typer.Option(
            "--status", help="queued, sending, deferred, sent, failed, cancelled (repeatable)."
        ),
    ] = None,
    account: Annotated[str | None, typer.Option(help="Account id or name.")] = None,
    search: Annotated[str, typer.Option(help="Subject or recipient contains.")] = "",
    limit: int = 50,
    offset: int = 0,
    as_json: JsonOpt = False,
) -> None:
    """List messages, newest first (e.g. --status failed for the failed journal)."""
    with translated_errors():
        container, actor = get_container(), cli_actor()
        account_id = container.accounts.find(actor, account).id if account else None
        page = container.outbox.list(
            actor, OutboxQuery(tuple(status or ()), account_id, search, offset=offset, limit=limit)
        )
        if as_json:
            emit({"items": [_row(m) for m in page.items], "total": page.total}, True)
            return
        emit([_row(m) for m in page.items], False, COLUMNS, title=f"{page.total} messages")


@app.command()
def show(message_id: int, as_json: JsonOpt = False) -> None:
    """One message with its recipients and attempts."""
    with translated_errors():
        emit(get_container().outbox.get(cli_actor(), message_id), as_json)


@app.command()
def resend(message_id: int, as_json: JsonOpt = False) -> None:
    """Queue a failed, cancelled or deferred message again now (same Message-ID)."""
    with translated_errors():
        emit(_row(get_container().outbox.resend(cli_actor(), message_id)), as_json)


@app.command()
def cancel(message_id: int, as_json: JsonOpt = False) -> None:
    """Cancel a queued or deferred message."""
    with translated_errors():
        emit(_row(get_container().outbox.cancel(cli_actor(), message_id)), as_json)


@app.command()
def pause(account: str) -> None:
    """Stop sending from an account; its mail waits in the queue."""
    with translated_errors():
        container, actor = get_container(), cli_actor()
        container.outbox.set_paused(actor, container.accounts.find(actor, account).id, True)
        console.print(f"paused {account}")


@app.command()
def resume(account: str) -> None:
    """Resume sending from a paused account."""
    with translated_errors():
        container, actor = get_container(), cli_actor()
        container.outbox.set_paused(actor, container.accounts.find(actor, account).id, False)
        console.print(f"resumed {account}")


def _attachment(path: Path) -> Attachment:
    try:
        return Attachment(path.name, "application/octet-stream", path.read_bytes())
    except OSError as exc:
        raise InvalidInput(fields={"--attach": f"cannot be read: {exc.strerror}: {path}"}) from exc


def send(
    to: Annotated[list[str], typer.Option("--to", help="Recipient (repeatable).")],
    subject: Annotated[str, typer.Option(help="Subject line.")] = "",
    text: Annotated[str | None, typer.Option(help="Text body; '-' reads stdin.")] = None,
    html: Annotated[str, typer.Option(help="HTML body.")] = "",
    cc: Annotated[list[str] | None, typer.Option("--cc")] = None,
    bcc: Annotated[list[str] | None, typer.Option("--bcc")] = None,
    account: Annotated[
        str | None, typer.Option(help="Account id or name (default: routing).")
    ] = None,
    attach: Annotated[list[Path] | None, typer.Option(help="File to attach (repeatable).")] = None,
    idempotency_key: Annotated[str | None, typer.Option()] = None,
    immediate: Annotated[
        bool | None,
        typer.Option(
            "--immediate/--queued", help="Send now and wait, or queue (default: the account's)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Send a message; exit status 1 when an immediate send failed."""
    with translated_errors():
        container, actor = get_container(), cli_actor()
        body = read_stdin_text("--text") if text == "-" else (text or "")
        files = tuple(_attachment(p) for p in attach or ())
        mode = None if immediate is None else (SendMode.IMMEDIATE if immediate else SendMode.QUEUED)
        account_id = container.accounts.find(actor, account).id if account else None
        done = container.outbox.submit(
            actor,
            Draft(
                to=tuple(to),
                cc=tuple(cc or ()),
                bcc=tuple(bcc or ()),
                subject=subject,
                text=body,
                html=html,
                attachments=files,
                account_id=account_id,
                idempotency_key=idempotency_key,
                mode=mode,
            ),
        )
        row = _row(done.message) | {"created": done.created}
        if done.result is not None:
            row["detail"] = done.result.detail
        emit(row, as_json)
        if done.result is not None and done.result.status is not MessageStatus.SENT:
            raise typer.Exit(1)


@route_app.command()
def explain(
    account: Annotated[str | None, typer.Option(help="Account id or name to check.")] = None,
    user: Annotated[int | None, typer.Option(help="Sender user id (default: system).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Which account a message would go through, step by step."""
    with translated_errors():
        container, actor = get_container(), cli_actor()
        account_id = container.accounts.find(actor, account).id if account else None
        decision = container.routing.explain(actor, account_id, user)
        if as_json:
            emit(decision, True)
            return
        emit(
            [{"rule": s.rule, "outcome": s.outcome, "detail": s.detail} for s in decision.steps],
            False,
            ["rule", "outcome", "detail"],
        )
        chosen = decision.account_name or "none"
        console.print(f"→ account: [bold]{chosen}[/]", highlight=False)
        if decision.account_id is None:
            raise typer.Exit(1)


def worker(
    name: Annotated[str | None, typer.Option(help="Worker name (default host-pid).")] = None,
    concurrency: Annotated[
        int, typer.Option(help="SMTP connections at a time (served by one thread).")
    ] = 4,
) -> None:
    """Run the delivery worker (and fetch scheduler) until SIGTERM/SIGINT."""
    from postroom.worker.runner import Worker

    with translated_errors():
        runner = Worker(get_container(), name, concurrency)
        runner.install_signal_handlers()
        console.print(f"worker {runner.name} started ({runner.concurrency} connections)")
        runner.run()
        console.print(f"worker {runner.name} stopped after {runner.delivered} messages")
