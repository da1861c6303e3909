"""`postroom check ACCOUNT [--smtp] [--imap] [--pop3] [--sendmail] [--send-test-to ADDR]
[--transcript] [--json]` and `postroom check --all [--concurrency N] [--json]`.

Exit status 0 when every probe passed, 1 when one failed (scripts can rely on it); bad input and
unknown accounts get the usual codes from cli/common.py.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from postroom.cli.common import (
    EXIT_FAILED,
    EXIT_USAGE,
    cli_actor,
    console,
    emit_json,
    fail,
    get_container,
    translated_errors,
)
from postroom.domain.accounts import Account
from postroom.domain.checks import CheckResult, StepOutcome
from postroom.services.checks import OUTGOING

MARKS = {
    StepOutcome.OK: Text("✓", style="green"),
    StepOutcome.FAILED: Text("✗", style="bold red"),
    StepOutcome.SKIPPED: Text("-", style="dim"),
    StepOutcome.WARNING: Text("!", style="yellow"),
}


def check(
    account: Annotated[
        str | None, typer.Argument(metavar="ACCOUNT", help="Account id or name.")
    ] = None,
    smtp: Annotated[bool, typer.Option("--smtp", help="Test the SMTP server.")] = False,
    sendmail: Annotated[bool, typer.Option("--sendmail", help="Test the sendmail binary.")] = False,
    imap: Annotated[bool, typer.Option("--imap", help="Test the IMAP server.")] = False,
    pop3: Annotated[bool, typer.Option("--pop3", help="Test the POP3 server.")] = False,
    send_test_to: Annotated[
        str | None,
        typer.Option("--send-test-to", metavar="ADDR", help="Also send a real test e-mail."),
    ] = None,
    transcript: Annotated[
        bool, typer.Option("--transcript", help="Show the (redacted) conversation.")
    ] = False,
    all_accounts: Annotated[
        bool, typer.Option("--all", help="Test every active account (progress bar, summary).")
    ] = False,
    concurrency: Annotated[
        int | None, typer.Option("--concurrency", min=1, max=512, help="Probes at a time.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Test an account's servers step by step (no flag: every configured server)."""
    with translated_errors():
        if all_accounts == (account is not None):
            fail("give an ACCOUNT or --all (not both)", EXIT_USAGE)
        if all_accounts:
            _check_all(concurrency, as_json)
            return
        assert account is not None
        container = get_container()
        actor = cli_actor()
        target = container.accounts.find(actor, account)
        chosen = {
            p
            for p, on in (("smtp", smtp), ("sendmail", sendmail), ("imap", imap), ("pop3", pop3))
            if on
        }
        results = container.checks.check_account(actor, target.id, chosen or None)
        if send_test_to is not None:
            results.append(container.checks.send_test_email(actor, target.id, send_test_to))
        if as_json:
            emit_json(
                {
                    "account": target.name,
                    "ok": all(r.ok for r in results),
                    "results": [r.to_dict() for r in results],
                }
            )
        else:
            for result in results:
                _print_result(target, result, transcript)
        if not all(r.ok for r in results):
            raise typer.Exit(EXIT_FAILED)


def _print_result(account: Account, result: CheckResult, transcript: bool) -> None:
    verdict = Text("passed", style="bold green") if result.ok else Text("FAILED", style="bold red")
    console.print(
        Text.assemble((f"{result.protocol.upper()} ", "bold"), f"{account.name}: ", verdict)
    )
    table = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    for column in ("", "step", "ms", "message"):
        table.add_column(column, justify="right" if column == "ms" else "left")
    for step in result.steps:
        table.add_row(MARKS[step.outcome], step.name, str(step.elapsed_ms), Text(step.message))
    console.print(table)
    if not result.ok:
        part = "outgoing" if result.protocol in OUTGOING else "incoming"
        kind = result.error_class.value if result.error_class else "error"
        console.print(Text.assemble(("  ✗ ", "bold red"), f"{kind}: {result.error_message}"))
        if result.hint:
            console.print(Text.assemble(("  hint: ", "bold"), result.hint))
        if result.field:
            console.print(Text.assemble(("  field: ", "bold"), f"{part}.{result.field.value}"))
    if result.tls is not None:
        tls = result.tls
        expiry = f", expires in {tls.days_left} days" if tls.days_left is not None else ""
        console.print(Text(f"  TLS: {tls.version} {tls.cipher}, {tls.subject}{expiry}"))
    for warning in result.warnings:
        console.print(Text.assemble(("  warning: ", "bold yellow"), warning))
    if transcript:
        for line in result.transcript:
            arrow = {"client": "C:", "server": "S:"}.get(line.direction, "--")
            console.print(Text(f"  {line.ms:>6} {arrow} {line.text}", style="dim"))
    console.print()


def _check_all(concurrency: int | None, as_json: bool) -> None:
    container = get_container()
    with Progress(
        TextColumn("checking accounts"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
        transient=False,
    ) as bar:
        task = bar.add_task("check", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        outcome = container.checks.check_all(cli_actor(), concurrency, progress)
    failed = [(a, rs) for a, rs in outcome if not all(r.ok for r in rs)]
    if as_json:
        emit_json(
            {
                "accounts": len(outcome),
                "failed": len(failed),
                "results": [
                    {
                        "account_id": a.id,
                        "account": a.name,
                        "ok": all(r.ok for r in rs),
                        "results": [r.to_dict() for r in rs],
                    }
                    for a, rs in outcome
                ],
            }
        )
    else:
        table = Table(title=f"{len(outcome)} accounts, {len(failed)} failing", header_style="bold")
        for column in ("", "account", "protocol", "error", "hint"):
            table.add_column(column)
        for account, results in outcome:
            for result in results:
                table.add_row(
                    MARKS[StepOutcome.OK if result.ok else StepOutcome.FAILED],
                    Text(account.name),
                    result.protocol,
                    Text(result.error_class.value if result.error_class else ""),
                    Text(result.hint or result.error_message if not result.ok else ""),
                )
        console.print(table)
    if failed:
        raise typer.Exit(EXIT_FAILED)
