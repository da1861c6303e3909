"""PostgreSQL: the claim's SKIP LOCKED branch, and 4 worker processes draining a queue with zero
duplicates at the sink."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from postroom.settings import load_settings
from postroom.storage.types import utcnow
from postroom.wiring import Container, build
from tests.integration.outbox.conftest import SYSTEM, draft, make_account
from tests.integration.outbox.smtp_peer import ScriptedSmtp

pytestmark = pytest.mark.postgres
COUNT = 1000
GIVE_UP_S = 180  # a hang guard, not a performance threshold


@pytest.fixture
def pg(postgres_url: str, tmp_path: Path) -> Iterator[Container]:
    container = build(load_settings(database_url=postgres_url, var_dir=tmp_path, env="test"))
    container.migrate()
    yield container
    container.close()


def test_concurrent_claims_take_disjoint_rows_without_waiting(pg: Container) -> None:
    account_id = make_account(pg, 25, name=f"claim-{secrets.token_hex(3)}")
    pg.outbox.submit_many(SYSTEM, [draft(account_id) for _ in range(10)])
    with pg.engine.connect() as first, pg.engine.connect() as second, first.begin():
        a = pg.outbox_repo.claim(first, "a", 4, 60, utcnow())
        with second.begin():  # first still holds its row locks: SKIP LOCKED passes them
            b = pg.outbox_repo.claim(second, "b", 100, 60, utcnow())
    assert len(a) == 4
    assert not {m.id for m in a} & {m.id for m in b}
    # The database is shared by the session, so `a` may have taken older claimable rows of other
    # tests first; what matters is that between them the two claims took all ten of ours.
    assert len([m for m in a + b if m.account_id == account_id]) == 10
    with pg.engine.begin() as conn:  # leave nothing claimable behind in the shared database
        for owner, batch in (("a", a), ("b", b)):
            pg.outbox_repo.release(conn, [m.id for m in batch], owner, utcnow())
    for message in a + b:
        if message.account_id == account_id:
            pg.outbox.cancel(SYSTEM, message.id)


@pytest.mark.slow
def test_four_worker_processes_drain_the_queue_without_duplicates(
    pg: Container, postgres_url: str, tmp_path: Path
) -> None:
    environ = {
        **os.environ,
        "POSTROOM_DATABASE_URL": postgres_url,
        "POSTROOM_VAR_DIR": str(tmp_path),
        "POSTROOM_ENV": "test",
        "POSTROOM_WORKER_BATCH_SIZE": "25",
        "POSTROOM_WORKER_POLL_S": "0.1",
    }
    log = tmp_path / "workers.log"
    with ScriptedSmtp() as sink:
        account_id = make_account(
            pg,
            sink.port,
            name=f"drain-{secrets.token_hex(3)}",
            max_messages_per_connection=50,
            max_connections=8,
        )
        ids = set()
        for start in range(0, COUNT, 500):
            ids |= {
                m.id
                for m in pg.outbox.submit_many(
                    SYSTEM, [draft(account_id, subject=f"m{i}") for i in range(start, start + 500)]
                )
            }
        workers = [
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "postroom",
                    "worker",
                    "--name",
                    f"pg-{n}",
                    "--concurrency",
                    "2",
                ],
                env=environ,
                stdout=log.open("ab"),
                stderr=subprocess.STDOUT,
            )
            for n in range(4)
        ]
        deadline = time.monotonic() + GIVE_UP_S
        while len(sink.received) < COUNT and time.monotonic() < deadline:
            time.sleep(0.1)
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        codes = [w.wait(timeout=60) for w in workers]
        received = sink.message_ids()
    assert codes == [0, 0, 0, 0], log.read_text()[-2000:]
    assert len(received) == COUNT
    assert max(received.values()) == 1  # zero duplicates
    with pg.engine.connect() as conn:
        rows = pg.outbox_repo.list_workers(conn)
    busy = [r for r in rows if r["name"].startswith("pg-") and r["delivered"] > 0]
    assert len(busy) >= 2  # the work really was shared
    assert all(pg.outbox.get(SYSTEM, i).status.value == "sent" for i in list(ids)[:20])
