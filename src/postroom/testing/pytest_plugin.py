"""pytest fixtures for real mail peers and a scratch PostgreSQL database.

Enable with `pytest_plugins = ["postroom.testing.pytest_plugin"]`. Every server starts once per
session on 127.0.0.1 ports chosen at run time and is stopped with its own stop command at the
end. An absent server or binary goes through `missing_service` (skip on a laptop, fail when
POSTROOM_REQUIRE_SERVICES=1). Tests that use a fixture get its marker (`dovecot`, `postfix`,
`postgres`) automatically, so `-m "not postfix"` works without decorating them.

    mail_ca        trustme.CA shared by Dovecot and Postfix (one cafile trusts both)
    dovecot        DovecotServer with users alice, bob, carol (random passwords)
    postfix        PostfixServer using that Dovecot for SASL and LMTP delivery of postroom.test
    smtp_sink      the session's SmtpSink, cleared (count 0, no dumps) for each test
    postgres_url   SQLAlchemy URL of a fresh database, dropped at the end of the session
    own_postgres_url  the same for one test (`postgres_database()` for other scopes)
    own_database_url  a database of one test's own, once on a SQLite file and once (marked
                   `postgres`) on PostgreSQL: the test runs on both
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme

from postroom.testing.dovecot import DovecotServer, dovecot_available
from postroom.testing.postfix import PostfixServer, SmtpSink, postfix_available, smtp_sink_available
from postroom.testing.services import missing_service

TEST_USERS = ("alice", "bob", "carol")
# Where scratch databases are created: the `test` database of the machine's trust-auth server.
DEFAULT_POSTGRES_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/test"
_MARKED_FIXTURES = {
    "dovecot": "dovecot",
    "postfix": "postfix",
    "smtp_sink": "postfix",
    "postgres_url": "postgres",
    "own_postgres_url": "postgres",
}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the services its fixtures need."""
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        for marker in {mark for name, mark in _MARKED_FIXTURES.items() if name in names}:
            item.add_marker(marker)


@pytest.fixture(scope="session")
def mail_ca() -> trustme.CA:
    """The throwaway CA that signs every peer's certificate."""
    return trustme.CA()


@pytest.fixture(scope="session")
def dovecot(mail_ca: trustme.CA) -> Iterator[DovecotServer]:
    """A running Dovecot with users alice, bob and carol; see DovecotServer for the helpers."""
    reason = dovecot_available()
    if reason is not None:
        missing_service(reason)
    users = {user: secrets.token_urlsafe(12) for user in TEST_USERS}
    with DovecotServer(users, ca=mail_ca) as server:
        yield server


@pytest.fixture(scope="session")
def postfix(dovecot: DovecotServer, mail_ca: trustme.CA) -> Iterator[PostfixServer]:
    """A running Postfix: AUTH through `dovecot`, postroom.test delivered to it over LMTP."""
    reason = postfix_available()
    if reason is not None:
        missing_service(reason)
    auth, lmtp = dovecot.endpoint_values()["auth"], dovecot.endpoint_values()["lmtp"]
    with PostfixServer(
        sasl_auth=(auth.host, auth.port), lmtp=(lmtp.host, lmtp.port), ca=mail_ca
    ) as server:
        yield server


@pytest.fixture(scope="session")
def _smtp_sink_session() -> Iterator[SmtpSink]:
    reason = smtp_sink_available()
    if reason is not None:
        missing_service(reason)
    with SmtpSink(dump=True) as sink:
        yield sink


@pytest.fixture
def smtp_sink(_smtp_sink_session: SmtpSink) -> SmtpSink:
    """Postfix's smtp-sink (started once per session), counting from zero for this test."""
    _smtp_sink_session.clear()
    return _smtp_sink_session


@contextlib.contextmanager
def postgres_database(prefix: str = "postroom_test") -> Iterator[str]:
    """`postgresql+psycopg://…/<prefix>_<random>`: a new, empty database, dropped (forced) on
    exit. An unreachable server goes through `missing_service`."""
    import psycopg  # here, so suites without PostgreSQL never import the driver
    from psycopg.conninfo import conninfo_to_dict
    from sqlalchemy.engine import URL

    dsn = os.environ.get("POSTROOM_TEST_POSTGRES_DSN", DEFAULT_POSTGRES_ADMIN_DSN)
    params = conninfo_to_dict(dsn)
    name = f"{prefix}_{secrets.token_hex(6)}"
    try:
        admin = psycopg.connect(dsn, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        where = f"{params.get('host', 'localhost')}:{params.get('port', 5432)}"  # no password
        missing_service(f"PostgreSQL at {where} is not reachable: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        url = URL.create(
            "postgresql+psycopg",
            username=admin.info.user,
            password=str(params["password"]) if params.get("password") else None,
            host=admin.info.host,
            port=admin.info.port,
            database=name,
        )
        try:
            yield url.render_as_string(hide_password=False)
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database shared by the session's tests."""
    with postgres_database() as url:
        yield url


@pytest.fixture
def own_postgres_url() -> Iterator[str]:
    """A database of this test's own (migrations walked down and up, or a schema of its own)."""
    with postgres_database("postroom_own") as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def own_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database of this test's own, on SQLite and then on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'own.db'}"
    return str(request.getfixturevalue("own_postgres_url"))
