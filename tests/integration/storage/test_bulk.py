"""storage/bulk.BulkInsert stores exactly what SQLAlchemy's own insert stores, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from postroom.storage.bulk import BulkInsert, BulkUpdate
from postroom.storage.engine import make_engine
from postroom.storage.types import JSON, UtcDateTime

_meta = sa.MetaData()
things = sa.Table(
    "bulk_things",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(100), nullable=False, unique=True),
    sa.Column("at", UtcDateTime, nullable=True),
    sa.Column("tags", JSON, nullable=False),
    sa.Column("flag", sa.Boolean, nullable=False),
    sa.Column("blob", sa.LargeBinary, nullable=True),
    sa.Column("references", sa.Text, nullable=False),  # a reserved word: must be quoted
    sa.Column("trail", JSON, nullable=True),
)
COLUMNS = ["key", "at", "tags", "flag", "blob", "references", "trail"]


@pytest.fixture
def engine(own_database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(own_database_url)
    _meta.create_all(engine)
    yield engine
    engine.dispose()


def _row(i: int) -> tuple[object, ...]:
    at = datetime(2026, 12, 1, 10, 0, tzinfo=UTC) + timedelta(microseconds=i)
    return (f"k{i}", at if i % 3 else None, [] if i % 2 else [["n", f"e{i}"]], i % 2 == 0,
            bytes([i % 256]) * 3 if i % 4 else None, f"r{i}", None if i % 2 else [{"i": i}])  # fmt: skip


def _stored(engine: sa.Engine) -> list[tuple[object, ...]]:
    with engine.begin() as conn:
        rows = conn.execute(sa.select(*[things.c[n] for n in COLUMNS]).order_by(things.c.id))
        return [tuple(r) for r in rows]


def _as_stored_by_the_driver(engine: sa.Engine) -> list[tuple[object, ...]]:
    select = sa.select(*[sa.column(n) for n in COLUMNS]).select_from(sa.table("bulk_things"))
    with engine.begin() as conn:  # untyped columns: what the driver hands back, unprocessed
        return [tuple(r) for r in conn.execute(select.order_by(sa.column("id")))]


@pytest.mark.parametrize("returning", [[], ["id"]])
def test_rows_are_stored_exactly_as_sqlalchemy_stores_them(
    engine: sa.Engine, returning: list[str]
) -> None:
    rows = [_row(i) for i in range(7)]
    with engine.begin() as conn:
        conn.execute(sa.insert(things), [dict(zip(COLUMNS, r, strict=True)) for r in rows])
    by_sqlalchemy, raw_by_sqlalchemy = _stored(engine), _as_stored_by_the_driver(engine)
    with engine.begin() as conn:
        conn.execute(things.delete())
        BulkInsert(things, COLUMNS, returning=returning).execute(conn, rows)
    assert _as_stored_by_the_driver(engine) == raw_by_sqlalchemy  # the same text for JSON, dates
    expected = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in r) for r in rows]
    assert _stored(engine) == by_sqlalchemy == expected


def test_updates_go_through_the_same_processors(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        BulkInsert(things, COLUMNS).execute(conn, [_row(1), _row(2)])
        ids = dict(conn.execute(sa.select(things.c.key, things.c.id)).all())
    later = datetime(2027, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    update = BulkUpdate(things, ["at", "tags", "flag"], "id")
    with engine.begin() as conn:
        update.execute(conn, [(later, [["x", "y"]], False, ids["k2"]), (None, [], True, 999)])
    stored = {r[0]: r[1:4] for r in _stored(engine)}
    assert stored["k2"] == (later, [["x", "y"]], False)
    assert stored["k1"] == _row(1)[1:4]
    with pytest.raises(ValueError, match="a row of 2 values for 4 columns"), engine.begin() as conn:
        update.execute(conn, [(later, ids["k1"])])


def test_conflicts_are_skipped_and_returning_names_only_inserted_rows(engine: sa.Engine) -> None:
    insert = BulkInsert(things, COLUMNS, returning=["id", "key"], ignore_conflicts=True)
    with engine.begin() as conn:
        first = insert.execute(conn, [_row(1), _row(2)])
        second = insert.execute(conn, [_row(2), _row(3)])
    assert sorted(key for _, key in first) == ["k1", "k2"]
    assert [key for _, key in second] == ["k3"]
    assert len(_stored(engine)) == 3


def test_a_conflict_without_ignore_rolls_the_whole_batch_back(engine: sa.Engine) -> None:
    insert = BulkInsert(things, COLUMNS)
    with engine.begin() as conn:
        insert.execute(conn, [_row(1)])
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as conn:
        insert.execute(conn, [_row(5), _row(1)])
    assert [r[0] for r in _stored(engine)] == ["k1"]


def test_large_batches_are_split_into_statements_within_the_parameter_limit(
    engine: sa.Engine,
) -> None:
    rows = [_row(i) for i in range(12_345)]  # 74,070 parameters: more than either database takes
    with engine.begin() as conn:
        inserted = BulkInsert(things, COLUMNS, returning=["key"]).execute(conn, rows)
    assert len(inserted) == len(rows)
    assert _stored(engine)[-1][0] == "k12344"


def test_a_row_of_the_wrong_width_is_refused_before_anything_is_written(engine: sa.Engine) -> None:
    with pytest.raises(ValueError, match="a row of 2 values for 7 columns"), engine.begin() as conn:
        BulkInsert(things, COLUMNS).execute(conn, [_row(1), ("k9", None)])
    assert _stored(engine) == []
    with engine.begin() as conn:
        assert BulkInsert(things, COLUMNS).execute(conn, []) == []
