"""Migrations build exactly the schema the tables declare, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from postroom.storage.engine import alembic_config, current_revision, make_engine, upgrade
from postroom.storage.tables import metadata


def test_upgrade_head_on_an_empty_database_matches_the_tables(own_database_url: str) -> None:
    engine = make_engine(own_database_url)  # a new database: no tables at all
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        upgrade(engine)  # idempotent
        head = ScriptDirectory.from_config(alembic_config(engine)).get_current_head()
        assert current_revision(engine) == head
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            assert compare_metadata(context, metadata) == []
    finally:
        engine.dispose()
