"""/api/v1/tokens: API tokens (stored hashed; the token is shown once, when created)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from postroom.api.deps import ActorDep, ContainerDep
from postroom.api.routes.me import own_user_id
from postroom.api.schemas.accounts import INT32_MAX
from postroom.api.schemas.people import TokenCreate, TokenCreated, TokenPublic

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])

TokenId = Annotated[int, Path(ge=1, le=INT32_MAX)]


@router.get("")
def list_tokens(container: ContainerDep, actor: ActorDep) -> list[TokenPublic]:
    """Admins: every token; others: their own. Never the token itself, only its prefix."""
    return [TokenPublic.model_validate(t) for t in container.people.list_tokens(actor)]


@router.post("", status_code=201)
def create_token(body: TokenCreate, container: ContainerDep, actor: ActorDep) -> TokenCreated:
    """A new token for yourself (admins: for anyone). Copy it now: it is not shown again."""
    user_id = body.user_id if body.user_id is not None else own_user_id(actor)
    token = container.people.create_token(actor, user_id, body.name)
    return TokenCreated(token=token, user_id=user_id, name=body.name)


@router.post("/{token_id}/revoke", status_code=204)
def revoke_token(token_id: TokenId, container: ContainerDep, actor: ActorDep) -> Response:
    container.people.revoke_token(actor, token_id)
    return Response(status_code=204)
