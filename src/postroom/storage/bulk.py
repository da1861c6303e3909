"""Many rows in one statement, without SQLAlchemy's per-row work.

The hot paths (a fetched batch of 100 messages, a worker's batch of sent mail) spent more time in
SQLAlchemy's per-row parameter handling (a dict per row, key lookup per column, the compiled
cache) than in the database. `BulkInsert` writes the multi-row `INSERT … VALUES (…), (…)` itself,
once per dialect and row count, and takes plain tuples; each value still goes through its
column's own bind processor (SQLAlchemy's, the same as for any other statement), so the stored
form does not depend on which path wrote a row. Up to `_MAX_PARAMS` parameters per statement (SQLite
allows 32,766; PostgreSQL 65,535).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

_MAX_PARAMS = 30_000
_Processor = Callable[[Any], Any] | None  # a column's bind processor, None: value as is


class BulkInsert:
    """An INSERT of `columns` of `table`, for many rows at once.

    `ignore_conflicts` skips rows that violate a unique constraint (`ON CONFLICT DO NOTHING`,
    the same on SQLite and PostgreSQL); `returning` names columns to hand back for the rows
    actually inserted (in no promised order)."""

    def __init__(
        self,
        table: sa.Table,
        columns: Sequence[str],
        *,
        returning: Sequence[str] = (),
        ignore_conflicts: bool = False,
    ) -> None:
        self._table = table
        self._columns = [table.c[name] for name in columns]
        self._returning = [table.c[name] for name in returning]
        self._ignore = ignore_conflicts
        self._dialects: dict[str, tuple[str, str, str, list[_Processor]]] = {}
        self._sql: dict[tuple[str, int], str] = {}

    def execute(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Insert `rows` (each a tuple in the order of `columns`) in `conn`'s transaction;
        the `returning` columns of the inserted rows ([] without `returning`)."""
        if not rows:
            return []
        name = conn.dialect.name
        if name not in self._dialects:
            self._dialects[name] = self._prepare(conn.dialect)
        head, one, tail, processors = self._dialects[name]
        width = len(self._columns)
        step = max(_MAX_PARAMS // width, 1)
        converters = [(i, p) for i, p in enumerate(processors) if p is not None]
        found: list[tuple[Any, ...]] = []
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            params: list[Any] = []
            for row in chunk:
                if len(row) != width:
                    raise ValueError(f"a row of {len(row)} values for {width} columns")
                if converters:
                    values = list(row)
                    for i, process in converters:
                        values[i] = process(values[i])
                    params.extend(values)
                else:
                    params.extend(row)
            key = (name, len(chunk))
            sql = self._sql.get(key)
            if sql is None:
                sql = self._sql[key] = head + ", ".join([one] * len(chunk)) + tail
            result = conn.exec_driver_sql(sql, tuple(params))
            if self._returning:
                found.extend(tuple(r) for r in result)
        return found

    def _prepare(self, dialect: sa.Dialect) -> tuple[str, str, str, list[_Processor]]:
        quote = dialect.identifier_preparer.quote
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        # Identifiers come from the table's metadata, quoted by the dialect; values are bound.
        table = dialect.identifier_preparer.format_table(self._table)
        names = ", ".join(quote(c.name) for c in self._columns)
        head = f"INSERT INTO {table} ({names}) VALUES "  # noqa: S608
        one = "(" + ", ".join([marker] * len(self._columns)) + ")"
        tail = " ON CONFLICT DO NOTHING" if self._ignore else ""
        if self._returning:
            tail += " RETURNING " + ", ".join(quote(c.name) for c in self._returning)
        processors: list[_Processor] = [
            c.type.dialect_impl(dialect).bind_processor(dialect) for c in self._columns
        ]
        return head, one, tail, processors
