"""/api/v1/users: people and their roles (admins change them; others see their teammates)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from postroom.api.deps import ActorDep, ContainerDep
from postroom.api.schemas.accounts import INT32_MAX
from postroom.api.schemas.common import reveal
from postroom.api.schemas.people import UserCreate, UserPublic, UserUpdate

router = APIRouter(prefix="/api/v1/users", tags=["users"])

UserId = Annotated[int, Path(ge=1, le=INT32_MAX)]


@router.get("")
def list_users(container: ContainerDep, actor: ActorDep) -> list[UserPublic]:
    return [UserPublic.model_validate(u) for u in container.people.list_users(actor)]


@router.post("", status_code=201)
def create_user(body: UserCreate, container: ContainerDep, actor: ActorDep) -> UserPublic:
    user = container.people.create_user(
        actor,
        email=body.email,
        role=body.role,
        name=body.name,
        password=body.password.get_secret_value() if body.password else None,
        team_ids=body.team_ids,
    )
    return UserPublic.model_validate(user)


@router.get("/{user_id}")
def get_user(user_id: UserId, container: ContainerDep, actor: ActorDep) -> UserPublic:
    return UserPublic.model_validate(container.people.get_user(actor, user_id))


@router.patch("/{user_id}")
def update_user(
    user_id: UserId, body: UserUpdate, container: ContainerDep, actor: ActorDep
) -> UserPublic:
    changes = reveal(body.model_dump(exclude_unset=True))
    return UserPublic.model_validate(container.people.update_user(actor, user_id, **changes))
