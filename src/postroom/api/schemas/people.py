"""Schemas of users, teams, work locations, API tokens and per-employee credentials."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, SecretStr

from postroom.api.schemas.accounts import Address, DisplayName, Id, Name
from postroom.api.schemas.common import Public, Strict
from postroom.domain.people import Role


class TeamCreate(Strict):
    name: Name


class TeamPublic(Public):
    id: int
    name: str
    created_at: datetime


class LocationCreate(Strict):
    name: Name
    address: Annotated[str, Field(max_length=500)] = ""


class LocationPublic(Public):
    id: int
    name: str
    address: str
    created_at: datetime


class UserCreate(Strict):
    email: Address
    role: Role
    name: DisplayName = ""
    password: SecretStr | None = Field(default=None, description="for the web login; optional")
    team_ids: Annotated[list[Id], Field(max_length=1000)] = []


class UserUpdate(Strict):
    """A PATCH: only the fields sent are changed; null is the same as leaving a field out."""

    role: Role | None = None
    name: DisplayName | None = None
    active: bool | None = None
    team_ids: Annotated[list[Id], Field(max_length=1000)] | None = None
    password: SecretStr | None = None


class UserPublic(Public):
    id: int
    email: str
    name: str
    role: Role
    active: bool
    team_ids: list[int]
    work_location_id: int | None
    created_at: datetime


class TokenCreate(Strict):
    name: Name = ""
    user_id: Id | None = Field(default=None, description="admins only; default: yourself")


class TokenCreated(Strict):
    """The token itself: shown in this response only; only its hash is stored."""

    token: str
    user_id: int
    name: str


class TokenPublic(Public):
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class WorkLocationChoice(Strict):
    work_location_id: Id | None


class CredentialIn(Strict):
    """Your own login for a per-employee account. An empty password keeps the stored one."""

    username: Address
    password: SecretStr | None = None


class CredentialPublic(Public):
    account_id: int
    username: str
    has_password: bool = Field(default=True, description="a stored credential always has one")
    updated_at: datetime
