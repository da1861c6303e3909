"""Round trip through real servers: Postroom → Postfix submission (STARTTLS + AUTH via Dovecot)
→ LMTP → Dovecot, found there by its Message-ID; a pipelined run of messages, to Dovecot and to
smtp-sink; and a wrong password flags the account."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from postroom.domain.accounts import AuthMode, Security
from postroom.domain.outbox import MessageStatus
from postroom.settings import load_settings
from postroom.testing.dovecot import DovecotServer
from postroom.testing.postfix import PostfixServer, SmtpSink
from postroom.wiring import Container, build
from tests.integration.outbox.conftest import SYSTEM, draft, drain, make_account


@pytest.fixture
def tls_container(tmp_path: Path, postfix: PostfixServer) -> Iterator[Container]:
    c = build(
        load_settings(
            database_url=f"sqlite:///{tmp_path}/t.db",
            var_dir=tmp_path,
            env="test",
            ca_file=str(postfix.cafile),
        )
    )
    c.migrate()
    yield c
    c.close()


def _alice_on_submission(c: Container, postfix: PostfixServer, dovecot: DovecotServer) -> int:
    """An account sending as alice through Postfix's submission port (STARTTLS + SASL)."""
    return make_account(
        c,
        postfix.ports.submission,
        security=Security.STARTTLS,
        auth_mode=AuthMode.CENTRAL,
        username="alice",
        password=dovecot.password("alice"),
        from_address=dovecot.address("alice"),
    )


def test_submission_with_starttls_and_auth_reaches_the_mailbox(
    tls_container: Container, postfix: PostfixServer, dovecot: DovecotServer
) -> None:
    account_id = _alice_on_submission(tls_container, postfix, dovecot)
    sent = tls_container.outbox.submit(SYSTEM, draft(account_id, dovecot.address("bob")))
    drain(tls_container)
    message = tls_container.outbox.get(SYSTEM, sent.message.id)
    assert message.status is MessageStatus.SENT, message.last_error
    assert dovecot.find_message("bob", message.message_id, timeout_s=30) is not None


def test_wrong_password_defers_and_flags_the_account(
    tls_container: Container, postfix: PostfixServer, dovecot: DovecotServer
) -> None:
    account_id = make_account(
        tls_container,
        postfix.ports.submissions,
        security=Security.SSL,
        auth_mode=AuthMode.CENTRAL,
        username="alice",
        password="not-the-password",
        from_address=dovecot.address("alice"),
    )
    sent = tls_container.outbox.submit(SYSTEM, draft(account_id, dovecot.address("bob")))
    drain(tls_container)
    message = tls_container.outbox.get(SYSTEM, sent.message.id)
    assert message.status is MessageStatus.DEFERRED
    assert message.attempt_log[-1].outcome == "auth_failed"
    assert "not-the-password" not in message.last_error
    with tls_container.engine.begin() as conn:
        assert tls_container.outbox_repo.auth_failing_since(conn, account_id) is not None


def test_a_run_of_messages_pipelined_through_postfix_reaches_the_mailbox(
    tls_container: Container, postfix: PostfixServer, dovecot: DovecotServer
) -> None:
    account_id = _alice_on_submission(tls_container, postfix, dovecot)
    ids = [
        tls_container.outbox.submit(
            SYSTEM, draft(account_id, dovecot.address("bob"), subject=f"run {n}")
        ).message.id
        for n in range(4)
    ]
    drain(tls_container)
    messages = [tls_container.outbox.get(SYSTEM, i) for i in ids]
    assert [m.status for m in messages] == [MessageStatus.SENT] * 4, messages[0].last_error
    for message in messages:
        assert dovecot.find_message("bob", message.message_id, timeout_s=30) is not None


def test_smtp_sink_gets_every_message_of_a_pipelined_run_once(
    container: Container, smtp_sink: SmtpSink
) -> None:
    account_id = make_account(container, smtp_sink.port)
    submitted = container.outbox.submit_many(
        SYSTEM, [draft(account_id, "sink@postroom.test", subject=f"m{n}") for n in range(25)]
    )
    assert drain(container) == 25
    assert smtp_sink.wait_for(25) == 25
    assert smtp_sink.message_ids() == {m.message_id: 1 for m in submitted}
