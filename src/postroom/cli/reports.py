"""`postroom report masters [--csv|--json]`: the Mail Server Masters report (seed 000)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from postroom.cli.common import cli_actor, emit, get_container, translated_errors

app = typer.Typer(help="Reports.", no_args_is_help=True)

# The table shows what fits a terminal; --csv and --json carry every column.
TABLE_COLUMNS = ["name", "email", "status", "team", "outgoing", "incoming", "default", "last_ok_at"]


def _server(row: dict[str, Any], part: str, kind: str) -> str:
    if row[f"{part}_{kind}"] is None:
        return ""
    if row[f"{part}_{kind}"] == "sendmail":
        return "sendmail"
    where = f"{row[f'{part}_host']}:{row[f'{part}_port']}"
    return f"{row[f'{part}_{kind}']} {where} {row[f'{part}_security']}"


def _summary(row: dict[str, Any]) -> dict[str, Any]:
    defaults = [d for d in ("outgoing", "incoming") if row[f"default_{d}"]]
    return {
        **row,
        "outgoing": _server(row, "outgoing", "transport"),
        "incoming": _server(row, "incoming", "protocol"),
        "default": "+".join(defaults),
    }


@app.command("masters")
def masters(
    as_csv: Annotated[bool, typer.Option("--csv", help="Print CSV (every column).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON (every column).")] = False,
    include_deleted: Annotated[bool, typer.Option("--include-deleted")] = False,
) -> None:
    """Every account with its servers, defaults, health and audit columns."""
    with translated_errors():
        reports = get_container().reports
        rows = reports.mail_server_masters(cli_actor(), include_deleted=include_deleted)
        if as_csv:
            sys.stdout.write(reports.to_csv(rows))
            return
        if as_json:
            emit(rows, True)
            return
        emit([_summary(r) for r in rows], False, TABLE_COLUMNS, "Mail Server Masters")
