"""Engine construction and schema migration, the same for SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import Engine, ExceptionContext

from postroom.errors import InvalidInput

MIGRATIONS = Path(__file__).with_name("migrations")


def _refuse_bad_values(ctx: ExceptionContext) -> None:
    """A value the database cannot hold is the caller's input error, not a 500: an integer past
    SQLite's 64 bits (OverflowError while binding), text that is not UTF-8 (lone surrogates), or
    anything PostgreSQL calls a data exception (SQLSTATE class 22: integer out of range, NUL in
    text, …). The edges validate first and name the field; this is the backstop for whatever
    slips past them. The transaction is rolled back as for any error, so nothing is half written."""
    exc = ctx.original_exception
    if isinstance(exc, OverflowError):
        raise InvalidInput("a number is out of range for the database") from exc
    if isinstance(exc, UnicodeEncodeError):
        raise InvalidInput("text must be valid Unicode (no lone surrogates)") from exc
    if isinstance(ctx.sqlalchemy_exception, sa.exc.DataError):
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else "invalid value"
        raise InvalidInput(f"a value is not valid for the database: {reason}") from exc


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url`. SQLite gets WAL, foreign keys and a busy timeout on every connection.

    WAL lets readers (API) and the writer (worker) run at once; the busy timeout turns a brief
    write lock into a wait instead of an error; foreign keys are off by default in SQLite.
    """
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": 30}, **kwargs)
        event.listen(engine, "handle_error", _refuse_bad_values)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not the driver, open transactions; BEGIN IMMEDIATE takes the write
            # lock up front so two writers wait on busy_timeout instead of deadlocking on upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA synchronous=NORMAL")
            # Checkpoint every ~40 MB of WAL instead of SQLite's 4 MB: each checkpoint syncs
            # the WAL and the database file, and on a first IMAP sync those syncs were half of
            # the commit time (bench/inbound.py); a WAL of some tens of MB costs nothing.
            cur.execute("PRAGMA wal_autocheckpoint=10000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: sa.Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    engine = sa.create_engine(url, pool_pre_ping=True, **kwargs)
    event.listen(engine, "handle_error", _refuse_bad_values)
    return engine


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` (idempotent)."""
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()
