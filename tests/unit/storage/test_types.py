"""UtcDateTime's SQLite shortcut stores exactly the text SQLAlchemy's own DATETIME stores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from postroom.storage.types import UtcDateTime

VALUES = [
    datetime(2026, 12, 1, 10, 0, tzinfo=UTC),  # no microseconds: still six digits
    datetime(2026, 12, 1, 10, 0, 0, 123456, tzinfo=UTC),
    datetime(999, 1, 2, 3, 4, 5, 6, tzinfo=UTC),  # a year below 1000: zero-padded
    datetime(2027, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),  # to UTC: previous year
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


@pytest.mark.parametrize("value", VALUES)
def test_sqlite_text_is_sqlalchemys(value: datetime) -> None:
    dialect = sqlite.dialect()
    ours = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    theirs = sa.DateTime().dialect_impl(dialect).bind_processor(dialect)
    assert ours is not None
    assert theirs is not None
    assert ours(value) == theirs(value.astimezone(UTC).replace(tzinfo=None))


def test_none_passes_and_naive_values_are_refused() -> None:
    for dialect in (sqlite.dialect(), postgresql.dialect()):
        process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
        assert process is not None
        assert process(None) is None
        with pytest.raises(ValueError, match="naive datetime"):
            process(datetime(2026, 12, 1))


def test_postgresql_gets_aware_utc() -> None:
    dialect = postgresql.dialect()
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    assert process(VALUES[3]) == VALUES[3]
    assert process(VALUES[3]).tzinfo == UTC
