"""`postroom tokens create|list|revoke`: API tokens for `Authorization: Bearer`."""

from __future__ import annotations

from typing import Annotated

import typer

from postroom.cli.common import (
    EXIT_NOT_FOUND,
    cli_actor,
    console,
    emit,
    fail,
    get_container,
    translated_errors,
)

app = typer.Typer(help="API tokens (stored hashed; shown once).", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
COLUMNS = ["id", "user", "name", "prefix", "created_at", "last_used_at", "revoked_at"]


@app.command("create")
def create(
    email: Annotated[str, typer.Argument(help="E-mail of the user the token acts as.")],
    name: Annotated[str, typer.Option("--name", help="What the token is for.")] = "",
) -> None:
    """Create a token and print it alone on stdout (for `TOKEN=$(postroom tokens create …)`).
    Only its hash is stored: this is the one time it can be seen."""
    with translated_errors():
        container = get_container()
        user = container.people.find_user(email)
        if user is None:
            fail(f"no user with e-mail {email!r}", EXIT_NOT_FOUND)
        typer.echo(container.people.create_token(cli_actor(), user.id, name))


@app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """List tokens (never the token itself: its first characters identify it)."""
    with translated_errors():
        container = get_container()
        actor = cli_actor()
        emails = {u.id: u.email for u in container.people.list_users(actor)}
        rows = [
            {
                "id": t.id,
                "user": emails.get(t.user_id, t.user_id),
                "name": t.name,
                "prefix": t.prefix + "…",
                "created_at": t.created_at,
                "last_used_at": t.last_used_at,
                "revoked_at": t.revoked_at,
            }
            for t in container.people.list_tokens(actor)
        ]
        emit(rows, as_json, COLUMNS, "API tokens")


@app.command("revoke")
def revoke(token_id: Annotated[int, typer.Argument(metavar="ID", help="Token id.")]) -> None:
    """Revoke a token; requests with it are refused from now on."""
    with translated_errors():
        get_container().people.revoke_token(cli_actor(), token_id)
        console.print(f"token {token_id} revoked")
