"""`postroom users create-admin|create|list`."""

from __future__ import annotations

import secrets
from typing import Annotated

import typer

from postroom.cli.common import (
    cli_actor,
    console,
    emit,
    get_container,
    read_secrets,
    translated_errors,
)
from postroom.cli.teams import resolve_team
from postroom.domain.people import Role, User

app = typer.Typer(help="Users and their roles.", no_args_is_help=True)

EmailArg = Annotated[str, typer.Argument(help="The user's e-mail address (their login).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
NameOpt = Annotated[str, typer.Option("--name", help="Display name.")]
PasswordStdinOpt = Annotated[
    bool,
    typer.Option(
        "--password-stdin",
        help="Read the web-login password from stdin (asked without echo on a terminal).",
    ),
]
COLUMNS = ["id", "email", "name", "role", "active", "teams", "created_at"]


def _row(user: User) -> dict[str, object]:
    return {
        "id": user.id,
        "email": user.email,
        "name": user.name,
        "role": user.role.value,
        "active": user.active,
        "teams": ", ".join(map(str, user.team_ids)),
        "created_at": user.created_at,
    }


@app.command("create-admin")
def create_admin(
    email: EmailArg,
    password_stdin: PasswordStdinOpt = False,
    name: NameOpt = "",
    if_none: Annotated[
        bool,
        typer.Option("--if-none", help="Do nothing (exit 0) when an admin already exists."),
    ] = False,
) -> None:
    """Create an admin. Without --password-stdin a one-time password is generated and printed
    once; change it after the first login."""
    with translated_errors():
        container = get_container()
        if if_none and container.people.has_admin():
            console.print("an admin already exists; nothing to do")
            return
        generated = not password_stdin
        password = secrets.token_urlsafe(15) if generated else read_secrets("Password")[0]
        user = container.people.create_user(
            cli_actor(), email=email, role=Role.ADMIN, name=name, password=password
        )
        console.print(f"created admin {user.email} (id {user.id})", highlight=False)
        if generated:
            typer.echo(f"one-time password: {password}")


@app.command("create")
def create(
    email: EmailArg,
    role: Annotated[Role, typer.Option("--role", help="admin, manager or member.")] = Role.MEMBER,
    team: Annotated[
        list[str] | None, typer.Option("--team", help="Team id or name; repeat for several.")
    ] = None,
    name: NameOpt = "",
    password_stdin: PasswordStdinOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Create a user. Without a password the user signs in with API tokens only."""
    with translated_errors():
        container = get_container()
        team_ids = [resolve_team(container, t) for t in team or []]
        password = read_secrets("Password")[0] if password_stdin else None
        user = container.people.create_user(
            cli_actor(), email=email, role=role, name=name, password=password, team_ids=team_ids
        )
        emit(user, as_json)


@app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """List the users."""
    with translated_errors():
        users = get_container().people.list_users(cli_actor())
        emit(users if as_json else [_row(u) for u in users], as_json, COLUMNS, "Users")
