"""Dependencies shared by every router: the container and the calling actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from postroom.domain.people import Actor
from postroom.errors import Unauthenticated
from postroom.wiring import Container


def get_container(request: Request) -> Container:
    container: Container = request.app.state.container
    return container


ContainerDep = Annotated[Container, Depends(get_container)]


def current_actor(request: Request, container: ContainerDep) -> Actor:
    """The actor behind `Authorization: Bearer <token>`; 401 otherwise."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("an API token is required (Authorization: Bearer …)")
    return container.people.authenticate(token.strip())


ActorDep = Annotated[Actor, Depends(current_actor)]
