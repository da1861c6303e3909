"""A web client against a fresh SQLite database, and helpers to log in as any role."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from postroom.api.app import create_app
from postroom.domain.people import Actor, Role
from postroom.settings import load_settings
from postroom.wiring import Container, build

PASSWORD = "correct horse battery"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Web:
    container: Container

    def client(self) -> TestClient:
        return TestClient(create_app(self.container), follow_redirects=False)

    def user(self, email: str, role: Role, team_ids: list[int] | None = None) -> int:
        return self.container.people.create_user(
            Actor.system(), email=email, role=role, password=PASSWORD, team_ids=team_ids
        ).id

    def login(self, email: str) -> TestClient:
        client = self.client()
        response = client.post(
            "/login",
            data={"email": email, "password": PASSWORD, "csrf_token": csrf_of(client, "/login")},
        )
        assert response.status_code == 303, response.text
        return client


def csrf_of(client: TestClient, path: str) -> str:
    """The CSRF token of the form on `path` (the session's token)."""
    match = _TOKEN.search(client.get(path).text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def build_container(tmp_path: Path, **settings: object) -> Container:
    container = build(
        load_settings(
            database_url=f"sqlite:///{tmp_path}/t.db",
            var_dir=tmp_path,
            **({"env": "test"} | settings),
        )
    )
    container.migrate()
    return container


@pytest.fixture
def web(tmp_path: Path) -> Iterator[Web]:
    container = build_container(tmp_path)
    yield Web(container)
    container.close()
