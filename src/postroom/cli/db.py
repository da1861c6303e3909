"""`postroom db upgrade|current`."""

from __future__ import annotations

import typer

from postroom.storage.engine import current_revision, upgrade
from postroom.wiring import build

app = typer.Typer(help="Database schema.", no_args_is_help=True)


@app.command("upgrade")
def upgrade_cmd() -> None:
    """Migrate the database to the newest schema (safe to run again)."""
    container = build()
    upgrade(container.engine)
    typer.echo(f"database at revision {current_revision(container.engine)}")


@app.command("current")
def current_cmd() -> None:
    """Print the schema revision of the database."""
    typer.echo(current_revision(build().engine) or "empty")
