"""An API on a per-test SQLite file, and a small world of two teams with people in every role."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from postroom.api.app import create_app
from postroom.domain.people import Actor, Role
from postroom.settings import load_settings
from postroom.wiring import Container, build

BODY_LIMIT = 64 * 1024
SECRET = "s3cret-Pa55word"  # every password the tests store; no response may contain it


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    settings = load_settings(
        database_url=f"sqlite:///{tmp_path}/t.db",
        var_dir=tmp_path,
        env="test",
        max_body_bytes=BODY_LIMIT,
    )
    c = build(settings)
    c.migrate()
    yield c
    c.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container)) as c:
        yield c


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def make_user(
    container: Container, email: str, role: Role, team_ids: tuple[int, ...] = ()
) -> dict[str, str]:
    """A user with a fresh API token; returns the request headers that act as them."""
    user = container.people.create_user(
        Actor.system(), email=email, role=role, team_ids=list(team_ids)
    )
    return auth(container.people.create_token(Actor.system(), user.id, "test"))


@dataclass
class World:
    team_a: int
    team_b: int
    admin: dict[str, str]
    manager_a: dict[str, str]
    member_a: dict[str, str]
    manager_b: dict[str, str]
    member_b: dict[str, str]


@pytest.fixture
def world(container: Container) -> World:
    system = Actor.system()
    a = container.people.create_team(system, "Team A").id
    b = container.people.create_team(system, "Team B").id
    return World(
        team_a=a,
        team_b=b,
        admin=make_user(container, "admin@example.com", Role.ADMIN),
        manager_a=make_user(container, "manager.a@example.com", Role.MANAGER, (a,)),
        member_a=make_user(container, "member.a@example.com", Role.MEMBER, (a,)),
        manager_b=make_user(container, "manager.b@example.com", Role.MANAGER, (b,)),
        member_b=make_user(container, "member.b@example.com", Role.MEMBER, (b,)),
    )


def account_body(name: str, team_id: int | None = None, **extra: Any) -> dict[str, Any]:
    """A valid account with both parts and both passwords set."""
    return {
        "name": name,
        "email": f"{name.lower().replace(' ', '.')}@example.com",
        "team_id": team_id,
        "outgoing": {"host": "smtp.example.com", "username": "out-user", "password": SECRET},
        "incoming": {"host": "imap.example.com", "username": "in-user", "password": SECRET},
        **extra,
    }


def create_account(
    client: TestClient, headers: dict[str, str], name: str, team_id: int | None = None, **extra: Any
) -> dict[str, Any]:
    response = client.post(
        "/api/v1/accounts", json=account_body(name, team_id, **extra), headers=headers
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def error_fields(response: Any) -> dict[str, str]:
    """field → message of an RFC 9457 problem's `errors` list."""
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    return {e["field"]: e["message"] for e in response.json().get("errors", [])}
