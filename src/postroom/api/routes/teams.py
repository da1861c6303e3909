"""/api/v1/teams: the teams accounts and users belong to (admins create them)."""

from __future__ import annotations

from fastapi import APIRouter

from postroom.api.deps import ActorDep, ContainerDep
from postroom.api.schemas.people import TeamCreate, TeamPublic

router = APIRouter(prefix="/api/v1/teams", tags=["teams"])


@router.get("")
def list_teams(container: ContainerDep, actor: ActorDep) -> list[TeamPublic]:
    """Admins: every team; others: their own."""
    return [TeamPublic.model_validate(t) for t in container.people.list_teams(actor)]


@router.post("", status_code=201)
def create_team(body: TeamCreate, container: ContainerDep, actor: ActorDep) -> TeamPublic:
    return TeamPublic.model_validate(container.people.create_team(actor, body.name))
