"""The inbox migration (0003) goes down and up again on SQLite (PostgreSQL: integration)."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command

from postroom.storage.engine import alembic_config, make_engine, upgrade


def test_down_and_up(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path}/m.db")
    upgrade(engine)
    command.downgrade(alembic_config(engine), "0002")
    assert "inbox_messages" not in sa.inspect(engine).get_table_names()
    upgrade(engine)
    tables = set(sa.inspect(engine).get_table_names())
    assert {"inbox_messages", "inbox_attachments", "inbox_cursors", "inbox_pop3_uidls"} <= tables
    engine.dispose()
