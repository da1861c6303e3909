"""Dependencies shared by every router: the container and the calling actor."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request

from postroom.domain.people import Actor
from postroom.errors import InvalidInput, Unauthenticated
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

INT32_MAX = 2**31 - 1  # PostgreSQL INTEGER; SQLite's 64-bit limit would overflow past 2**63 - 1
Offset = Annotated[int, Query(ge=0, le=INT32_MAX, description="how many items to skip")]
"""A page's offset: bounded so that no database overflows on it (a 422 instead)."""


def storable_parameters(request: Request) -> None:
    """422 naming each query or path parameter that holds a NUL: PostgreSQL refuses NUL in text
    (a 500 deep in a search otherwise) and SQLite would silently take it; bodies are checked by
    the Strict schemas."""
    values = [*request.query_params.multi_items(), *request.path_params.items()]
    bad = {name: "must not contain NUL (U+0000)" for name, value in values if "\x00" in value}
    if bad:
        raise InvalidInput(fields=bad)
