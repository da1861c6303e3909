"""/api/v1/me: the caller's own profile, current work location and per-employee credentials
(seed 004 "My details")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from postroom.api.deps import ActorDep, ContainerDep
from postroom.api.schemas.accounts import INT32_MAX
from postroom.api.schemas.people import (
    CredentialIn,
    CredentialPublic,
    UserPublic,
    WorkLocationChoice,
)
from postroom.domain.people import Actor
from postroom.errors import Forbidden, NotFound

router = APIRouter(prefix="/api/v1/me", tags=["me"])

AccountId = Annotated[int, Path(ge=1, le=INT32_MAX)]


def own_user_id(actor: Actor) -> int:
    """The caller's user id; API tokens always belong to a user, the system actor has none."""
    if actor.user_id is None:
        raise Forbidden("the system actor has no user record")
    return actor.user_id


@router.get("")
def me(container: ContainerDep, actor: ActorDep) -> UserPublic:
    return UserPublic.model_validate(container.people.get_user(actor, own_user_id(actor)))


@router.put("/work-location")
def set_work_location(
    body: WorkLocationChoice, container: ContainerDep, actor: ActorDep
) -> UserPublic:
    """Where you work now (null: nowhere in particular); routing may follow it."""
    return UserPublic.model_validate(container.people.set_my_location(actor, body.work_location_id))


@router.get("/credentials")
def list_credentials(container: ContainerDep, actor: ActorDep) -> list[CredentialPublic]:
    return [CredentialPublic.model_validate(c) for c in container.people.my_credentials(actor)]


@router.get("/credentials/{account_id}")
def get_credentials(
    account_id: AccountId, container: ContainerDep, actor: ActorDep
) -> CredentialPublic:
    for credential in container.people.my_credentials(actor):
        if credential.account_id == account_id:
            return CredentialPublic.model_validate(credential)
    raise NotFound("no credentials stored for this account")


@router.put("/credentials/{account_id}")
def put_credentials(
    account_id: AccountId, body: CredentialIn, container: ContainerDep, actor: ActorDep
) -> CredentialPublic:
    """Store your own login for an account whose outgoing auth is per_employee; an empty
    password keeps the stored one."""
    credential = container.people.put_my_credentials(
        actor,
        account_id,
        body.username,
        body.password.get_secret_value() if body.password else None,
    )
    return CredentialPublic.model_validate(credential)


@router.delete("/credentials/{account_id}", status_code=204)
def delete_credentials(account_id: AccountId, container: ContainerDep, actor: ActorDep) -> Response:
    container.people.delete_my_credentials(actor, account_id)
    return Response(status_code=204)
