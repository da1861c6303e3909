"""The inbox on PostgreSQL: the migration both ways, a real fetch, and concurrent schedulers
that never claim one account twice (FOR UPDATE SKIP LOCKED)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command

from postroom.domain.accounts import AccountDraft, IncomingDraft, Security
from postroom.domain.inbox import InboxQuery
from postroom.domain.people import Actor
from postroom.settings import load_settings
from postroom.storage.audit import LogFilter
from postroom.storage.engine import alembic_config
from postroom.testing.dovecot import DovecotServer
from postroom.wiring import Container, build
from tests.integration.inbox.conftest import MakeAccount, account_factory
from tests.integration.inbox.test_fetch_imap import mail

SYSTEM = Actor.system()


@pytest.fixture
def pg_container(
    own_postgres_url: str, tmp_path: Path, dovecot: DovecotServer
) -> Iterator[Container]:
    """A container on a database of its own (the session database is shared with others)."""
    c = build(
        load_settings(
            database_url=own_postgres_url, var_dir=tmp_path, env="test", ca_file=str(dovecot.cafile)
        )
    )
    c.migrate()
    try:
        yield c
    finally:
        c.fetching.shutdown()
        c.close()


@pytest.fixture
def pg_make_account(pg_container: Container, dovecot: DovecotServer) -> MakeAccount:
    return account_factory(pg_container, dovecot)


def test_migration_down_and_up(pg_container: Container) -> None:
    cfg = alembic_config(pg_container.engine)
    command.downgrade(cfg, "0002")
    command.upgrade(cfg, "head")


def test_fetch_and_dedupe_on_postgres(
    pg_container: Container, pg_make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = pg_make_account()
    assert pg_container.fetching.fetch_account(account_id).ok
    for tag in ("pg1", "pg1", "pg2"):
        dovecot.deliver(user, mail(tag))
    dovecot.append(user, "INBOX", b"Subject: nul \x00 and 8-bit \xff\r\n\r\nbody \x00\r\n")
    report = pg_container.fetching.fetch_account(account_id)
    assert (report.ok, report.stored, report.duplicates) == (True, 3, 1), report.error
    page = pg_container.inbox.list(SYSTEM, account_id, InboxQuery(subject="pg"))
    assert sorted(m.subject for m in page.items) == ["pg1", "pg2"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_concurrent_schedulers_claim_each_account_once(pg_container: Container) -> None:
    port = closed_port()  # every fetch fails fast: what matters here is who claims what
    ids = [
        pg_container.accounts.create(
            SYSTEM,
            AccountDraft(
                name=f"pg-{i}",
                email=f"pg{i}@example.com",
                incoming=IncomingDraft(
                    host="127.0.0.1", port=port, security=Security.NONE, username="u", password="p"
                ),
            ),
        ).id
        for i in range(24)
    ]
    claimed: list[int] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def scheduler(name: str) -> None:
        own = build(pg_container.settings)  # its own engine and services, like another host
        try:
            start.wait()
            while n := own.fetching.run_due(name, wait=True, limit=2):
                with lock:
                    claimed.append(n)
        finally:
            own.close()

    threads = [threading.Thread(target=scheduler, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(claimed) == len(ids)
    for account_id in ids:
        runs = pg_container.log.query(SYSTEM, LogFilter(account_id=account_id, source="Incoming"))
        assert [e.action for e in runs.items] == ["fetch"]
