"""`postroom teams list|create`, and resolving a TEAM argument (id or name) for other commands."""

from __future__ import annotations

from typing import Annotated

import typer

from postroom.cli.common import cli_actor, emit, get_container, translated_errors
from postroom.errors import InvalidInput
from postroom.wiring import Container

app = typer.Typer(help="Teams: who sees and manages which accounts.", no_args_is_help=True)

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]


def resolve_team(container: Container, key: str, field: str = "team") -> int:
    """The id of the team given as an id or a (case-insensitive) name; InvalidInput naming
    `field` when there is no such team."""
    for team in container.people.list_teams(cli_actor()):
        if str(team.id) == key.strip() or team.name.casefold() == key.strip().casefold():
            return team.id
    raise InvalidInput(fields={field: f"no team {key!r}"})


@app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """List the teams."""
    with translated_errors():
        teams = get_container().people.list_teams(cli_actor())
        emit(teams, as_json, columns=["id", "name", "created_at"], title="Teams")


@app.command("create")
def create_cmd(
    name: Annotated[str, typer.Argument(help="Team name.")], as_json: JsonOpt = False
) -> None:
    """Create a team."""
    with translated_errors():
        team = get_container().people.create_team(cli_actor(), name)
        emit(team, as_json)
