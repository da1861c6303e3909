"""Many rows in one statement, without SQLAlchemy's per-row work.

The hot paths (a fetched batch of 100 messages, a worker's group of sent mail) spent more time
in SQLAlchemy's per-row parameter handling (a dict per row, key lookup per column, the compiled
cache) than in the database. `BulkInsert` writes the multi-row `INSERT … VALUES (…), (…)`
itself, once per dialect and row count; `BulkUpdate` runs one `UPDATE … WHERE key = ?` with
executemany. Both take plain tuples, and each value still goes through its column's own bind
processor (SQLAlchemy's, the same as for any other statement), so the stored form does not
depend on which path wrote a row. Up to `_MAX_PARAMS` parameters per INSERT (SQLite allows
32,766; PostgreSQL 65,535).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

_MAX_PARAMS = 30_000
_UNSET = object()
_Converters = list[tuple[int, Callable[[Any], Any]]]


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
        self._dialects: dict[str, tuple[str, str, str, _Converters]] = {}
        self._sql: dict[tuple[str, int], str] = {}

    def execute(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Insert `rows` (each a tuple in the order of `columns`) in `conn`'s transaction;
        the `returning` columns of the inserted rows ([] without `returning`).

        Without `returning` this is one executemany of a one-row statement (prepared once by
        the driver); with it, multi-row statements, as executemany cannot return rows."""
        if not rows:
            return []
        name = conn.dialect.name
        if name not in self._dialects:
            self._dialects[name] = self._prepare(conn.dialect)
        head, one, tail, converters = self._dialects[name]
        params = _converted(rows, len(self._columns), converters)
        if not self._returning:
            conn.exec_driver_sql(head + one + tail, params)
            return []
        found: list[tuple[Any, ...]] = []
        step = max(_MAX_PARAMS // len(self._columns), 1)
        for start in range(0, len(params), step):
            chunk = params[start : start + step]
            key = (name, len(chunk))
            sql = self._sql.get(key)
            if sql is None:
                sql = self._sql[key] = head + ", ".join([one] * len(chunk)) + tail
            flat = tuple(value for row in chunk for value in row)
            found.extend(tuple(r) for r in conn.exec_driver_sql(sql, flat))
        return found

    def _prepare(self, dialect: sa.Dialect) -> tuple[str, str, str, _Converters]:
        quote = dialect.identifier_preparer.quote
        marker = _marker(dialect)
        # Identifiers come from the table's metadata, quoted by the dialect; values are bound.
        table = dialect.identifier_preparer.format_table(self._table)
        names = ", ".join(quote(c.name) for c in self._columns)
        head = f"INSERT INTO {table} ({names}) VALUES "  # noqa: S608
        one = "(" + ", ".join([marker] * len(self._columns)) + ")"
        tail = " ON CONFLICT DO NOTHING" if self._ignore else ""
        if self._returning:
            tail += " RETURNING " + ", ".join(quote(c.name) for c in self._returning)
        return head, one, tail, _converters(dialect, self._columns)


class BulkUpdate:
    """`UPDATE table SET <columns> WHERE <key> = …` for many rows in one executemany; each row
    is a tuple of the new values in the order of `columns`, then the key's value."""

    def __init__(self, table: sa.Table, columns: Sequence[str], key: str) -> None:
        self._table = table
        self._columns = [table.c[name] for name in (*columns, key)]
        self._dialects: dict[str, tuple[str, _Converters]] = {}

    def execute(self, conn: sa.Connection, rows: Sequence[Sequence[Any]]) -> None:
        """Update one row per tuple in `conn`'s transaction (a missing key updates nothing)."""
        if not rows:
            return
        name = conn.dialect.name
        if name not in self._dialects:
            self._dialects[name] = self._prepare(conn.dialect)
        sql, converters = self._dialects[name]
        conn.exec_driver_sql(sql, _converted(rows, len(self._columns), converters))

    def _prepare(self, dialect: sa.Dialect) -> tuple[str, _Converters]:
        quote = dialect.identifier_preparer.quote
        marker = _marker(dialect)
        table = dialect.identifier_preparer.format_table(self._table)
        *columns, key = self._columns
        sets = ", ".join(f"{quote(c.name)} = {marker}" for c in columns)
        sql = f"UPDATE {table} SET {sets} WHERE {quote(key.name)} = {marker}"  # noqa: S608
        return sql, _converters(dialect, self._columns)


def _marker(dialect: sa.Dialect) -> str:
    """The positional placeholder of the dialect's driver (sqlite3: qmark; psycopg: format)."""
    if dialect.paramstyle == "qmark":
        return "?"
    if dialect.paramstyle in ("format", "pyformat"):
        return "%s"
    raise NotImplementedError(f"no bulk statements for paramstyle {dialect.paramstyle!r}")


def _converters(dialect: sa.Dialect, columns: Sequence[sa.Column[Any]]) -> _Converters:
    """(position, bind processor) of each column that has one for `dialect`; the others'
    values go to the driver as they are."""
    out: _Converters = []
    for i, column in enumerate(columns):
        impl = column.type.dialect_impl(dialect)
        process = impl.bind_processor(dialect)
        if process is not None:
            out.append((i, _empty_list_once(process) if isinstance(impl, sa.JSON) else process))
    return out


def _empty_list_once(process: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """A JSON column's processor that serialises the empty list (the commonest value of the
    list columns: no Cc, no flags) once instead of for every row."""
    empty = process([])
    return lambda value: empty if value == [] else process(value)


def _converted(
    rows: Sequence[Sequence[Any]], width: int, converters: _Converters
) -> list[tuple[Any, ...]]:
    """The rows as the driver takes them; ValueError for a row of the wrong width."""
    out: list[tuple[Any, ...]] = []
    last_in: list[Any] = [_UNSET] * len(converters)
    last_out: list[Any] = [None] * len(converters)
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row of {len(row)} values for {width} columns")
        if converters:
            values = list(row)
            for n, (i, process) in enumerate(converters):
                # A group's rows often share a value (the same `now`): convert it once.
                value = values[i]
                if value is not last_in[n]:
                    last_in[n], last_out[n] = value, process(value)
                values[i] = last_out[n]
            out.append(tuple(values))
        else:
            out.append(tuple(row))
    return out
