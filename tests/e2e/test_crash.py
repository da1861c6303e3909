"""Crash safety: a worker subprocess SIGKILLed mid-batch, again and again, then restarted.

Every message arrives at the sink; duplicates exist only for messages that were in flight
(leased, status 'sending') at a kill, and each copy carries the message's original Message-ID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from postroom.domain.outbox import MessageStatus
from postroom.settings import load_settings
from postroom.storage.tables.outbox import outbox_messages
from postroom.wiring import Container, build
from tests.integration.outbox.conftest import SYSTEM, draft, make_account
from tests.integration.outbox.smtp_peer import Script, ScriptedSmtp

COUNT = 150
KILLS = 3
GIVE_UP_S = 120  # a hang guard, not a performance threshold


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Container, dict[str, str]]]:
    url = f"sqlite:///{tmp_path}/crash.db"
    values = {
        "POSTROOM_DATABASE_URL": url,
        "POSTROOM_VAR_DIR": str(tmp_path),
        "POSTROOM_ENV": "test",
        "POSTROOM_WORKER_LEASE_S": "2",
        "POSTROOM_WORKER_BATCH_SIZE": "5",
        "POSTROOM_WORKER_POLL_S": "0.1",
    }
    container = build(load_settings(database_url=url, var_dir=tmp_path, env="test"))
    container.migrate()
    yield container, {**os.environ, **values}
    container.close()


def start_worker(environ: dict[str, str], name: str, log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "postroom", "worker", "--name", name, "--concurrency", "2"],
        env=environ,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )


def in_flight(container: Container) -> set[str]:
    with container.engine.connect() as conn:
        return set(
            conn.execute(
                sa.select(outbox_messages.c.message_id).where(
                    outbox_messages.c.status == MessageStatus.SENDING.value
                )
            ).scalars()
        )


def statuses(container: Container) -> dict[str, int]:
    with container.engine.connect() as conn:
        return container.outbox_repo.counts(conn)


def wait_for(predicate, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + GIVE_UP_S
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_mid_batch_loses_nothing(
    env: tuple[Container, dict[str, str]], tmp_path: Path
) -> None:
    container, environ = env
    log = tmp_path / "worker.log"
    with ScriptedSmtp(Script(delay_s=0.01)) as sink:
        account_id = make_account(container, sink.port, max_messages_per_connection=5)
        container.outbox.submit_many(
            SYSTEM, [draft(account_id, subject=f"m{i}") for i in range(COUNT)]
        )
        allowed_duplicates: set[str] = set()
        for kill in range(KILLS):
            worker = start_worker(environ, f"crash-{kill}", log)
            target = len(sink.received) + 15
            wait_for(lambda t=target: len(sink.received) >= t, "deliveries before the kill")
            worker.send_signal(signal.SIGKILL)
            worker.wait()
            allowed_duplicates |= in_flight(container)
        assert statuses(container).get("sent", 0) < COUNT  # the kills really interrupted it
        survivor = start_worker(environ, "survivor", log)
        wait_for(lambda: statuses(container).get("sent", 0) == COUNT, "all messages sent")
        survivor.send_signal(signal.SIGTERM)
        assert survivor.wait(timeout=GIVE_UP_S) == 0, log.read_text()[-2000:]
        received = sink.message_ids()

    with container.engine.connect() as conn:
        expected = set(conn.execute(sa.select(outbox_messages.c.message_id)).scalars())
    assert set(received) == expected  # nothing lost, nothing foreign
    duplicates = {mid for mid, n in received.items() if n > 1}
    assert duplicates <= allowed_duplicates
    assert statuses(container) == {"sent": COUNT}
