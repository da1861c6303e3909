"""Delivery against a scripted SMTP peer: the happy path, connection reuse, and the fault matrix."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
import sqlalchemy as sa

from postroom.domain.accounts import Security, SendMode
from postroom.domain.outbox import MessageStatus, OutboxMessage, RecipientStatus
from postroom.storage.tables.core import system_log
from postroom.storage.types import utcnow
from postroom.wiring import Container
from tests.integration.outbox.conftest import SYSTEM, draft, drain, make_account
from tests.integration.outbox.smtp_peer import DROP, STALL, Script, ScriptedSmtp


@pytest.fixture(autouse=True, params=[False, True], ids=["lockstep", "pipelined"])
def pipelining(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every case twice: each command waiting for its reply, and pipelined (RFC 2920)."""
    ScriptedSmtp.pipelining = request.param
    yield
    ScriptedSmtp.pipelining = False


def test_queued_message_is_delivered_once_with_its_message_id(container: Container) -> None:
    with ScriptedSmtp() as peer:
        account_id = make_account(container, peer.port)
        submitted = container.outbox.submit(SYSTEM, draft(account_id, "a@dest.example"))
        assert submitted.created
        assert submitted.message.status is MessageStatus.QUEUED
        assert drain(container) == 1
    message = container.outbox.get(SYSTEM, submitted.message.id)
    assert message.status is MessageStatus.SENT
    assert message.sent_at is not None
    assert [r.status for r in message.recipients] == [RecipientStatus.SENT]
    assert message.recipients[0].code == 250
    assert message.recipients[0].enhanced == "2.0.0"
    assert [a.outcome for a in message.attempt_log] == ["sent"]
    assert peer.message_ids() == {message.message_id: 1}
    assert peer.received[0].sender == "peer@sender.example"
    with container.engine.connect() as conn:
        logged = conn.execute(
            sa.select(system_log.c.action).where(
                system_log.c.source == "Outgoing", system_log.c.account_id == account_id
            )
        ).scalars()
        assert "message_sent" in list(logged)


def test_one_connection_carries_many_messages(container: Container) -> None:
    with ScriptedSmtp() as peer:
        account_id = make_account(container, peer.port)
        for i in range(3):
            container.outbox.submit(SYSTEM, draft(account_id, subject=f"m{i}"))
        assert drain(container) == 3
    assert peer.connections == 1
    assert len(peer.received) == 3


def _one(container: Container, replies: dict[str, str], *to: str, **account: object):
    with ScriptedSmtp(Script(replies)) as peer:
        account_id = make_account(container, peer.port, **account)
        sent = container.outbox.submit(SYSTEM, draft(account_id, *to))
        before = utcnow()
        drain(container)
    return container.outbox.get(SYSTEM, sent.message.id), before, peer


@pytest.mark.parametrize(
    ("replies", "code"),
    [
        ({"greeting": "421 4.3.2 busy"}, None),
        ({"MAIL": "451 4.3.0 try later"}, 451),
        ({"RCPT": "452 4.2.2 mailbox full"}, 452),
    ],
)
def test_transient_failures_defer_with_backoff(
    container: Container, replies: dict[str, str], code: int | None
) -> None:
    message, before, _ = _one(container, replies)
    assert message.status is MessageStatus.DEFERRED
    assert message.attempts == 1
    assert message.recipients[0].status is RecipientStatus.DEFERRED
    assert message.recipients[0].code == code
    # The first retry waits retry_initial_s (300 s) from the failed attempt.
    assert message.next_attempt_at is not None
    wait = message.next_attempt_at - before
    assert timedelta(seconds=299) <= wait <= timedelta(seconds=301)


def test_partial_refusal_leaves_the_others_sent(container: Container) -> None:
    message, _, peer = _one(
        container,
        {"RCPT:b@dest.example": "550 5.1.1 no such user"},
        "a@dest.example",
        "b@dest.example",
        "c@dest.example",
    )
    assert message.status is MessageStatus.SENT
    by = {r.address: r for r in message.recipients}
    assert by["b@dest.example"].status is RecipientStatus.FAILED
    assert by["b@dest.example"].enhanced == "5.1.1"
    assert {by["a@dest.example"].status, by["c@dest.example"].status} == {RecipientStatus.SENT}
    assert peer.received[0].recipients == ["a@dest.example", "c@dest.example"]


def test_554_after_data_fails_permanently(container: Container) -> None:
    message, _, _ = _one(container, {"DOT": "554 5.7.1 rejected as spam"})
    assert message.status is MessageStatus.FAILED
    assert message.next_attempt_at is None
    assert message.recipients[0].code == 554
    failed = container.outbox.list(SYSTEM, _query(MessageStatus.FAILED))
    assert [m.id for m in failed.items] == [message.id]


def test_drop_after_final_dot_resends_with_same_message_id(container: Container) -> None:
    with ScriptedSmtp(Script({"DOT": DROP}, connections=1)) as peer:
        account_id = make_account(container, peer.port)
        sent = container.outbox.submit(SYSTEM, draft(account_id))
        drain(container)
        message = container.outbox.get(SYSTEM, sent.message.id)
        assert message.status is MessageStatus.DEFERRED
        assert message.attempt_log[-1].outcome == "unknown"
        container.outbox.resend(SYSTEM, message.id)  # "send now" instead of waiting 5 min
        drain(container)
    final = container.outbox.get(SYSTEM, sent.message.id)
    assert final.status is MessageStatus.SENT
    assert peer.message_ids() == {final.message_id: 2}  # the duplicate the peer can dedupe


def test_stall_past_the_timeout_defers(container: Container) -> None:
    message, _, _ = _one(container, {"greeting": STALL}, timeout_s=1.0)
    assert message.status is MessageStatus.DEFERRED
    assert message.last_error


def test_tls_failure_defers(container: Container) -> None:
    message, _, _ = _one(container, {}, security=Security.SSL)
    assert message.status is MessageStatus.DEFERRED
    assert message.recipients[0].status is RecipientStatus.DEFERRED


def test_immediate_mode_returns_the_result_and_records_failures(container: Container) -> None:
    with ScriptedSmtp(Script({"DOT": "554 5.7.1 no"})) as peer:
        account_id = make_account(container, peer.port, send_mode=SendMode.IMMEDIATE)
        done = container.outbox.submit(SYSTEM, draft(account_id))
    assert done.result is not None
    assert done.result.status is MessageStatus.FAILED
    assert any("554" in str(e["text"]) for e in done.result.transcript)
    assert done.message.status is MessageStatus.FAILED


def test_idempotency_key_returns_the_first_message(container: Container) -> None:
    with ScriptedSmtp() as peer:
        account_id = make_account(container, peer.port)
        first = container.outbox.submit(SYSTEM, draft(account_id, idempotency_key="order-1"))
        again = container.outbox.submit(
            SYSTEM, draft(account_id, idempotency_key="order-1", subject="changed")
        )
        drain(container)
    assert again.created is False
    assert again.message.id == first.message.id
    assert len(peer.received) == 1


def _three(container: Container, script: Script) -> tuple[list[OutboxMessage], ScriptedSmtp]:
    """Three messages (to a@, b@, c@) in one chunk over one reused session."""
    with ScriptedSmtp(script) as peer:
        account_id = make_account(container, peer.port)
        ids = [
            container.outbox.submit(SYSTEM, draft(account_id, f"{to}@dest.example")).message.id
            for to in "abc"
        ]
        drain(container)
    return [container.outbox.get(SYSTEM, i) for i in ids], peer


def test_drop_after_the_dot_of_message_2_of_3(container: Container) -> None:
    (first, second, third), peer = _three(container, Script({"DOT#2": DROP}, connections=1))
    assert first.status is MessageStatus.SENT
    # Message 2 may have been delivered: unknown, deferred, re-sent with the same Message-ID.
    assert second.status is MessageStatus.DEFERRED
    assert second.attempt_log[-1].outcome == "unknown"
    # Message 3 (its envelope went with message 2's body, pipelined) is not lost.
    assert third.status is MessageStatus.SENT
    assert peer.connections == 2
    assert peer.message_ids() == {m.message_id: 1 for m in (first, second, third)}


def test_550_at_mail_of_message_2_leaves_1_and_3_sent(container: Container) -> None:
    (first, second, third), peer = _three(container, Script({"MAIL#2": "550 5.7.1 refused"}))
    assert [first.status, second.status, third.status] == [
        MessageStatus.SENT,
        MessageStatus.FAILED,
        MessageStatus.SENT,
    ]
    assert second.recipients[0].code == 550
    assert peer.connections == 1  # RSET, and the same connection carries message 3
    assert [r.recipients for r in peer.received] == [["a@dest.example"], ["c@dest.example"]]


@pytest.mark.parametrize(
    ("script", "statuses", "refused", "connections"),
    [
        pytest.param(
            Script({"RCPT:b@dest.example": "452 4.2.2 mailbox full"}),
            ("sent", "deferred", "sent"),
            (1, 452),
            1,
            id="452-at-rcpt-of-message-2-defers-only-it",
        ),
        pytest.param(
            Script({"DOT#1": "554 5.6.0 refused"}),
            ("failed", "sent", "sent"),
            (0, 554),
            1,
            id="554-after-data-of-message-1-while-message-2-is-in-flight",
        ),
        pytest.param(
            Script({"DOT#2": "421 4.3.2 shutting down"}, connections=1),
            ("sent", "deferred", "sent"),
            (1, 421),
            2,
            id="421-as-final-reply-defers-and-the-rest-reconnect",
        ),
    ],
)
def test_a_refusal_settles_only_its_message(
    container: Container,
    script: Script,
    statuses: tuple[str, str, str],
    refused: tuple[int, int],
    connections: int,
) -> None:
    messages, peer = _three(container, script)
    assert [m.status for m in messages] == [MessageStatus(s) for s in statuses]
    index, code = refused
    assert messages[index].recipients[0].code == code
    assert peer.connections == connections
    assert len(peer.received) == 2  # the other two went through


def test_stop_finishes_the_message_already_taken(container: Container) -> None:
    """Stop is set while message 1 waits for its reply: message 2 was already taken (its
    envelope rides with message 1's body when pipelining), so it is sent; message 3 is
    released untouched."""
    stop = threading.Event()
    with ScriptedSmtp(Script(delay_s=0.3)) as peer:
        account_id = make_account(container, peer.port)
        ids = [
            container.outbox.submit(SYSTEM, draft(account_id, f"{to}@dest.example")).message.id
            for to in "abc"
        ]

        def stop_after_the_first_dot() -> None:
            while not peer.received:
                time.sleep(0.01)
            stop.set()

        watcher = threading.Thread(target=stop_after_the_first_dot)
        watcher.start()
        with container.engine.begin() as conn:
            batch = container.outbox_repo.claim(conn, "w", 100, 60, utcnow())
        (chunk,) = container.delivery.plan(batch, "w")
        results = container.delivery.deliver_chunk(chunk, "w", stop)
        watcher.join()
    first, second, third = (container.outbox.get(SYSTEM, i) for i in ids)
    assert [r.message_id for r in results] == ids[:2]
    assert [first.status, second.status] == [MessageStatus.SENT, MessageStatus.SENT]
    assert third.status is MessageStatus.QUEUED
    assert third.attempts == 0
    assert len(peer.received) == 2


def _query(*statuses: MessageStatus):
    from postroom.domain.outbox import OutboxQuery

    return OutboxQuery(statuses=statuses)
