"""Auth failures, failover, rate limits, pause/resume, cancel/resend, leases, sendmail, worker."""

from __future__ import annotations

import stat
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from postroom.domain.accounts import AuthMode, Transport
from postroom.domain.outbox import MessageStatus, RecipientStatus
from postroom.errors import Conflict
from postroom.storage.tables.outbox import outbox_messages
from postroom.storage.types import utcnow
from postroom.testing.peer import free_ports
from postroom.wiring import Container
from postroom.worker.runner import Worker
from tests.integration.outbox.conftest import SYSTEM, draft, drain, make_account
from tests.integration.outbox.smtp_peer import Script, ScriptedSmtp


def test_auth_failure_defers_the_account_once_and_flags_it(container: Container) -> None:
    with ScriptedSmtp(Script({"AUTH": "535 5.7.8 bad credentials"})) as peer:
        account_id = make_account(
            container,
            peer.port,
            auth_mode=AuthMode.CENTRAL,
            username="user",
            password="wrong-password",
        )
        first = container.outbox.submit(SYSTEM, draft(account_id))
        drain(container)
        second = container.outbox.submit(SYSTEM, draft(account_id))
        drain(container)
        # A third message queued later waits for the backoff instead of another login.
        with container.engine.begin() as conn:
            assert container.outbox_repo.auth_failing_since(conn, account_id) is not None
            due = container.outbox_repo.claim(conn, "probe", 10, 60, utcnow())
        assert due == []
    assert peer.auth_attempts == 1
    for sent in (first, second):
        message = container.outbox.get(SYSTEM, sent.message.id)
        assert message.status in (MessageStatus.DEFERRED, MessageStatus.QUEUED)
        assert message.next_attempt_at is not None
        assert message.next_attempt_at > utcnow()
    assert "bad credentials" in container.outbox.get(SYSTEM, first.message.id).last_error
    assert "password=wrong-password" not in repr(container.outbox.get(SYSTEM, first.message.id))


def test_connect_failure_fails_over_to_the_secondary(container: Container) -> None:
    with ScriptedSmtp() as backup_peer:
        backup_id = make_account(container, backup_peer.port, name="Backup")
        closed_port = free_ports(1)[0]
        primary_id = make_account(
            container, closed_port, name="Primary", failover_account_id=backup_id
        )
        sent = container.outbox.submit(SYSTEM, draft(primary_id))
        drain(container)
    message = container.outbox.get(SYSTEM, sent.message.id)
    assert message.status is MessageStatus.SENT
    assert message.attempt_log[-1].account_id == backup_id
    assert message.attempt_log[-1].failover_from == primary_id
    assert len(backup_peer.received) == 1


def test_rate_limit_delays_and_never_fails(container: Container) -> None:
    with ScriptedSmtp() as peer:
        account_id = make_account(
            container, peer.port, rate_limit_count=2, rate_limit_period_s=3600
        )
        ids = [container.outbox.submit(SYSTEM, draft(account_id)).message.id for _ in range(3)]
        drain(container)
    statuses = [container.outbox.get(SYSTEM, i) for i in ids]
    assert [m.status for m in statuses] == [
        MessageStatus.SENT,
        MessageStatus.SENT,
        MessageStatus.QUEUED,
    ]
    waiting = statuses[2]
    assert waiting.attempts == 0
    assert waiting.next_attempt_at is not None
    assert waiting.next_attempt_at > utcnow() + timedelta(minutes=50)
    assert len(peer.received) == 2


def test_pause_holds_mail_and_resume_releases_it(container: Container) -> None:
    with ScriptedSmtp() as peer:
        account_id = make_account(container, peer.port)
        container.outbox.set_paused(SYSTEM, account_id, True)
        sent = container.outbox.submit(SYSTEM, draft(account_id))
        assert drain(container) == 0
        container.outbox.set_paused(SYSTEM, account_id, False)
        assert drain(container) == 1
    assert container.outbox.get(SYSTEM, sent.message.id).status is MessageStatus.SENT


def test_cancel_and_resend(container: Container) -> None:
    with ScriptedSmtp(Script({"DOT": "554 5.7.1 no"}, connections=1)) as peer:
        account_id = make_account(container, peer.port)
        cancelled = container.outbox.submit(
            SYSTEM, draft(account_id, send_after=utcnow() + timedelta(hours=1))
        )
        assert (
            container.outbox.cancel(SYSTEM, cancelled.message.id).status is MessageStatus.CANCELLED
        )
        with pytest.raises(Conflict):
            container.outbox.cancel(SYSTEM, cancelled.message.id)
        failed = container.outbox.submit(SYSTEM, draft(account_id))
        drain(container)
        assert container.outbox.get(SYSTEM, failed.message.id).status is MessageStatus.FAILED
        container.outbox.resend(SYSTEM, failed.message.id)
        drain(container)
    again = container.outbox.get(SYSTEM, failed.message.id)
    assert again.status is MessageStatus.SENT
    assert len(again.attempt_log) == 2
    with pytest.raises(Conflict):
        container.outbox.resend(SYSTEM, failed.message.id)
    assert len(peer.received) == 1


def test_expired_lease_returns_the_message_to_the_queue(container: Container) -> None:
    with ScriptedSmtp() as peer:
        account_id = make_account(container, peer.port)
        sent = container.outbox.submit(SYSTEM, draft(account_id))
        now = utcnow()
        with container.engine.begin() as conn:
            assert len(container.outbox_repo.claim(conn, "dead-worker", 10, 30, now)) == 1
            assert container.outbox_repo.claim(conn, "other", 10, 30, now) == []
            later = container.outbox_repo.claim(conn, "other", 10, 30, now + timedelta(seconds=31))
        assert [m.id for m in later] == [sent.message.id]
        assert later[0].attempts == 2


def test_claim_order_priority_then_longest_due_then_fifo(container: Container) -> None:
    account_id = make_account(container, 25)
    now = utcnow()
    low = container.outbox.submit(SYSTEM, draft(account_id, priority=9)).message.id
    first, second = (container.outbox.submit(SYSTEM, draft(account_id)).message.id for _ in "ab")
    retry = container.outbox.submit(SYSTEM, draft(account_id)).message.id
    later = container.outbox.submit(
        SYSTEM, draft(account_id, send_after=now + timedelta(hours=1))
    ).message.id
    urgent = container.outbox.submit(SYSTEM, draft(account_id, priority=1)).message.id
    m = outbox_messages
    with container.engine.begin() as conn:
        # A retry due for ten minutes goes before mail queued just now at the same priority.
        conn.execute(
            sa.update(m)
            .where(m.c.id == retry)
            .values(status="deferred", attempts=1, next_attempt_at=now - timedelta(minutes=10))
        )
        at = utcnow()
        claimed = [c.id for c in container.outbox_repo.claim(conn, "w", 3, 30, at)]
        rest = [c.id for c in container.outbox_repo.claim(conn, "w", 10, 30, at)]
    assert claimed == sorted([urgent, retry, first])  # the three first in claim order …
    assert sorted(rest) == sorted([second, low])  # … then the others; `later` is not due
    assert later not in claimed + rest


def test_sendmail_transport_records_exit_status(container: Container, tmp_path: Path) -> None:
    out = tmp_path / "sendmail.out"
    script = tmp_path / "sendmail"
    script.write_text(f'#!/bin/sh\necho "$@" > {out}.args\ncat > {out}\nexit 0\n')
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    account_id = make_account(
        container, 25, name="Local", transport=Transport.SENDMAIL, sendmail_path=str(script)
    )
    sent = container.outbox.submit(
        SYSTEM, draft(account_id, "a@dest.example", bcc=("hidden@dest.example",))
    )
    drain(container)
    message = container.outbox.get(SYSTEM, sent.message.id)
    assert message.status is MessageStatus.SENT
    assert {r.status for r in message.recipients} == {RecipientStatus.SENT}
    assert b"Message-ID: " + message.message_id.encode() in out.read_bytes()
    assert "hidden@dest.example" in (tmp_path / "sendmail.out.args").read_text()


def test_worker_loop_delivers_and_records_its_heartbeat(container: Container) -> None:
    with ScriptedSmtp() as peer:
        account_id = make_account(container, peer.port, max_messages_per_connection=4)
        container.outbox.submit_many(
            SYSTEM, [draft(account_id, subject=f"m{i}") for i in range(10)]
        )
        worker = Worker(container, "w1", concurrency=2)
        worker.run(max_idle_ticks=1)
    assert len(peer.received) == 10
    assert len(peer.message_ids()) == 10
    with container.engine.begin() as conn:
        rows = container.outbox_repo.list_workers(conn)
    assert rows[0]["name"] == "w1"
    assert rows[0]["stopped_at"] is not None
    assert rows[0]["delivered"] == 10
