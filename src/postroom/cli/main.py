"""The `postroom` command. Each area is a sub-command group in cli/<area>.py."""

from __future__ import annotations

import os
import sys

import typer

from postroom import __version__
from postroom.cli import accounts, db, logs, reports, secrets, serve, teams, tokens, users
from postroom.cli import check as check_cli
from postroom.cli import inbox as inbox_cli
from postroom.cli import outbox as outbox_cli

app = typer.Typer(
    name="postroom",
    help="Postroom: mail servers and e-mail accounts for business applications.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.add_typer(accounts.app, name="accounts")
app.add_typer(users.app, name="users")
app.add_typer(teams.app, name="teams")
app.add_typer(tokens.app, name="tokens")
app.add_typer(secrets.app, name="secrets")
app.add_typer(logs.app, name="logs")
app.add_typer(reports.app, name="report")
app.command("serve")(serve.serve)
app.add_typer(outbox_cli.app, name="outbox")
app.add_typer(outbox_cli.route_app, name="route")
app.command("send")(outbox_cli.send)
app.command("worker")(outbox_cli.worker)
app.command("check")(check_cli.check)
app.add_typer(inbox_cli.app, name="inbox")
app.command("fetch")(inbox_cli.fetch)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    """Entry point: a postroom error anywhere becomes a message and an exit code, not a trace;
    so does any other error (a bug: exit 70), unless POSTROOM_TRACEBACK=1 asks for the trace."""
    from postroom.cli.common import EXIT_INTERNAL, fail, report_error
    from postroom.errors import PostroomError

    try:
        app()
    except PostroomError as exc:
        sys.exit(report_error(exc))
    except Exception as exc:
        if os.environ.get("POSTROOM_TRACEBACK") == "1":
            raise
        try:
            fail(f"internal error ({type(exc).__name__}): {exc}", EXIT_INTERNAL)
        except typer.Exit as done:
            sys.exit(done.exit_code)
