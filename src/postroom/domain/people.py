"""Users, teams, roles and the access rules between them.

Access rule, in one place: an admin sees and changes everything; a manager changes the accounts
of their own teams; a member sees their own teams' accounts. System-wide accounts (team None) are
visible to everyone and changeable by admins only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    MEMBER = "member"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is calling. The worker and scheduler act as `Actor.system()`."""

    user_id: int | None
    email: str
    role: Role
    team_ids: frozenset[int] = frozenset()

    @classmethod
    def system(cls) -> Actor:
        return cls(None, "system", Role.ADMIN, frozenset())

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def can_read(self, team_id: int | None) -> bool:
        return self.is_admin or team_id is None or team_id in self.team_ids

    def can_manage(self, team_id: int | None) -> bool:
        if self.is_admin:
            return True
        return self.role is Role.MANAGER and team_id is not None and team_id in self.team_ids


@dataclass(frozen=True, slots=True)
class User:
    id: int
    email: str
    name: str
    role: Role
    active: bool
    team_ids: tuple[int, ...]
    work_location_id: int | None
    created_at: datetime

    def as_actor(self) -> Actor:
        return Actor(self.id, self.email, self.role, frozenset(self.team_ids))


@dataclass(frozen=True, slots=True)
class Team:
    id: int
    name: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class WorkLocation:
    id: int
    name: str
    address: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class ApiToken:
    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Credential:
    """A user's own login for a per-employee account. The password never leaves storage."""

    user_id: int
    account_id: int
    username: str
    updated_at: datetime
