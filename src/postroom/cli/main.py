"""The `postroom` command. Each area is a sub-command group in cli/<area>.py."""

from __future__ import annotations

import typer

from postroom import __version__
from postroom.cli import db, serve

app = typer.Typer(
    name="postroom",
    help="Postroom: mail servers and e-mail accounts for business applications.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(db.app, name="db")
app.command("serve")(serve.serve)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    from postroom.cli.common import translated_errors

    with translated_errors():
        app()
