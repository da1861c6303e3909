"""/api/v1/locations: work locations (seed 004 routes mail by the employee's current one)."""

from __future__ import annotations

from fastapi import APIRouter

from postroom.api.deps import ActorDep, ContainerDep
from postroom.api.schemas.people import LocationCreate, LocationPublic

router = APIRouter(prefix="/api/v1/locations", tags=["locations"])


@router.get("")
def list_locations(container: ContainerDep, _actor: ActorDep) -> list[LocationPublic]:
    """Every signed-in user may see them (to pick their own)."""
    return [LocationPublic.model_validate(x) for x in container.people.list_locations()]


@router.post("", status_code=201)
def create_location(
    body: LocationCreate, container: ContainerDep, actor: ActorDep
) -> LocationPublic:
    return LocationPublic.model_validate(
        container.people.create_location(actor, body.name, body.address)
    )
