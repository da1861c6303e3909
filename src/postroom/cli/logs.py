"""`postroom logs [--source] [--level] [--account] [--limit]` and `postroom logs show ID`."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from postroom.cli.common import cli_actor, console, emit, get_container, plain, translated_errors
from postroom.services.log import LEVELS, SOURCES
from postroom.storage.audit import LogFilter

app = typer.Typer(
    help="The system log (newest first). Sources: " + ", ".join(SOURCES) + ".",
    invoke_without_command=True,
)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
COLUMNS = ["id", "created_at", "source", "level", "account_id", "user", "message"]


@app.callback()
def logs(
    ctx: typer.Context,
    source: Annotated[str | None, typer.Option("--source", help="e.g. 'SMTP Auth'.")] = None,
    level: Annotated[str | None, typer.Option("--level", help="/".join(LEVELS))] = None,
    account: Annotated[str | None, typer.Option("--account", help="Account id or name.")] = None,
    search: Annotated[str, typer.Option("--search", help="Text in the message.")] = "",
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List system log entries, filtered."""
    if ctx.invoked_subcommand is not None:
        return
    with translated_errors():
        container = get_container()
        actor = cli_actor()
        account_id = None if account is None else container.accounts.find(actor, account).id
        flt = LogFilter(
            source=source, level=level, account_id=account_id, search=search, limit=limit
        )
        page = container.log.query(actor, flt)
        emit(list(page.items), as_json, COLUMNS, f"System log ({len(page.items)} of {page.total})")


@app.command("show")
def show(
    log_id: Annotated[int, typer.Argument(metavar="ID", help="Log entry id.")],
    as_json: JsonOpt = False,
) -> None:
    """One entry with its transcript (already redacted when it was captured)."""
    with translated_errors():
        entry = get_container().log.get(cli_actor(), log_id)
        if as_json:
            emit(entry, True)
            return
        fields = plain(entry)
        transcript = fields.pop("transcript") or []
        emit(fields, False)
        for line in transcript:
            console.print(json.dumps(line, ensure_ascii=False), highlight=False, markup=False)
