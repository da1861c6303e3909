"""Migration 0005 moves the raw bytes to outbox_bodies and back, losing no row on either database.

The danger it guards against: a table copy of outbox_messages on SQLite (batch mode's default)
drops the old table, and with foreign keys on that cascades into recipients and attempts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from postroom.storage.engine import alembic_config, make_engine, upgrade
from postroom.storage.tables.core import accounts
from postroom.storage.tables.outbox import (
    outbox_attempts,
    outbox_bodies,
    outbox_messages,
    outbox_recipients,
)
from postroom.storage.types import utcnow


@pytest.fixture
def engine(own_database_url: str) -> Iterator[sa.Engine]:
    """An engine on a database of its own (this test walks the schema down and up)."""
    engine = make_engine(own_database_url)
    yield engine
    engine.dispose()


def _counts(conn: sa.Connection) -> tuple[int, int]:
    count = sa.select(sa.func.count())
    return (
        conn.execute(count.select_from(outbox_recipients)).scalar_one(),
        conn.execute(count.select_from(outbox_attempts)).scalar_one(),
    )


def test_raw_bytes_move_to_bodies_and_back_keeping_every_child_row(engine: sa.Engine) -> None:
    upgrade(engine, "0004")
    # outbox_messages as revision 0004 has it: with the raw column.
    old = outbox_messages.to_metadata(sa.MetaData())
    old.append_column(sa.Column("raw", sa.LargeBinary, nullable=False))
    now = utcnow()
    raws = {b"first \x00\xff body", b"second body"}
    with engine.begin() as conn:
        account_id = conn.execute(
            sa.insert(accounts)
            .values(name="A", name_key="a", email="a@x.test", status="active")
            .values(created_at=now, updated_at=now)
            .returning(accounts.c.id)
        ).scalar_one()
        for n, raw in enumerate(sorted(raws)):
            message_id = conn.execute(
                sa.insert(old)
                .values(message_id=f"<{n}@x.test>", account_id=account_id, envelope_from="a@x")
                .values(raw=raw, size=len(raw), mode="queued", status="queued")
                .values(created_at=now, updated_at=now, expires_at=now + timedelta(days=5))
                .returning(old.c.id)
            ).scalar_one()
            conn.execute(
                sa.insert(outbox_recipients).values(
                    message_id=message_id, address="r@x.test", kind="to", status="pending"
                )
            )
            conn.execute(
                sa.insert(outbox_attempts).values(
                    message_id=message_id,
                    account_id=account_id,
                    worker="w",
                    started_at=now,
                    outcome="deferred",
                )
            )

    upgrade(engine)
    with engine.connect() as conn:
        assert {bytes(r) for r in conn.execute(sa.select(outbox_bodies.c.raw)).scalars()} == raws
        columns = {c["name"] for c in sa.inspect(conn).get_columns("outbox_messages")}
        assert "raw" not in columns
        assert _counts(conn) == (2, 2)

    command.downgrade(alembic_config(engine), "0004")
    with engine.connect() as conn:
        assert {bytes(r) for r in conn.execute(sa.select(old.c.raw)).scalars()} == raws
        assert "outbox_bodies" not in sa.inspect(conn).get_table_names()
        assert _counts(conn) == (2, 2)
