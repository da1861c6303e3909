"""The same repository and service tests on SQLite and on PostgreSQL.

`container` is parametrised over both databases. SQLite gets a file per test; PostgreSQL uses
the session's scratch database (`postgres_url` from postroom.testing.pytest_plugin), migrated
once and emptied before and after each test so tests neither see nor leave rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from postroom.settings import load_settings
from postroom.storage.secrets import SecretBox
from postroom.storage.tables import metadata
from postroom.wiring import Container, build

BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


_migrated: set[str] = set()


def _empty_postgres(engine: sa.Engine) -> None:
    # DELETE, children first: on a handful of rows much faster than TRUNCATE of every table.
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def database_url(backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'postroom.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def container(database_url: str, backend: str, tmp_path: Path) -> Iterator[Container]:
    settings = load_settings(
        database_url=database_url, var_dir=tmp_path, env="test", secret_key=SecretBox.new_key()
    )
    container = build(settings)
    if database_url not in _migrated:  # the session's PostgreSQL database: migrate it once
        container.migrate()
        _migrated.add(database_url)
    if backend == "postgres":
        _empty_postgres(container.engine)
    yield container
    if backend == "postgres":
        _empty_postgres(container.engine)
    container.close()
