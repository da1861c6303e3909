"""Against aiosmtpd (postroom.testing.peers.SmtpPeer): STARTTLS with a verified certificate,
AUTH, one of three recipients refused, an immediate send, and a pipelined run of messages."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from postroom.domain.accounts import AuthMode, Security, SendMode
from postroom.domain.outbox import MessageStatus, RecipientStatus
from postroom.settings import load_settings
from postroom.testing.peers import SmtpPeer
from postroom.testing.tls import LocalCA
from postroom.wiring import Container, build
from tests.integration.outbox.conftest import SYSTEM, draft, drain, make_account


@pytest.fixture
def ca(tmp_path: Path) -> LocalCA:
    return LocalCA.create(tmp_path / "ca")


@pytest.fixture
def tls_container(tmp_path: Path, ca: LocalCA) -> Iterator[Container]:
    c = build(
        load_settings(
            database_url=f"sqlite:///{tmp_path}/t.db",
            var_dir=tmp_path,
            env="test",
            ca_file=ca.cafile,
        )
    )
    c.migrate()
    yield c
    c.close()


def _starttls_account(c: Container, port: int) -> int:
    """An account logging in as u / pw-123456 after STARTTLS (the peers' user)."""
    return make_account(
        c,
        port,
        security=Security.STARTTLS,
        auth_mode=AuthMode.CENTRAL,
        username="u",
        password="pw-123456",
    )


def test_starttls_auth_and_partial_refusal(tls_container: Container, ca: LocalCA) -> None:
    peer = SmtpPeer(
        mode="starttls",
        cert=ca.server_cert(),
        users={"u": "pw-123456"},
        refuse={"b@dest.example": "550 5.1.1 No such user"},
    )
    with peer:
        account_id = _starttls_account(tls_container, peer.port)
        sent = tls_container.outbox.submit(
            SYSTEM, draft(account_id, "a@dest.example", "b@dest.example", "c@dest.example")
        )
        drain(tls_container)
        received = peer.messages
    message = tls_container.outbox.get(SYSTEM, sent.message.id)
    assert message.status is MessageStatus.SENT
    statuses = {r.address: r.status for r in message.recipients}
    assert statuses == {
        "a@dest.example": RecipientStatus.SENT,
        "b@dest.example": RecipientStatus.FAILED,
        "c@dest.example": RecipientStatus.SENT,
    }
    assert len(received) == 1
    assert received[0].rcpt_tos == ("a@dest.example", "c@dest.example")
    assert message.message_id.encode() in received[0].raw


def test_immediate_send_over_implicit_tls(tls_container: Container, ca: LocalCA) -> None:
    with SmtpPeer(mode="ssl", cert=ca.server_cert()) as peer:
        account_id = make_account(
            tls_container, peer.port, security=Security.SSL, send_mode=SendMode.IMMEDIATE
        )
        done = tls_container.outbox.submit(SYSTEM, draft(account_id))
        assert len(peer.messages) == 1
    assert done.result is not None
    assert done.result.status is MessageStatus.SENT
    assert done.message.status is MessageStatus.SENT


def test_pipelined_run_arrives_complete_byte_exact_and_in_order(
    tls_container: Container, ca: LocalCA
) -> None:
    """With PIPELINING each body carries the next envelope (RFC 2920 §3.1) over STARTTLS."""
    peer = SmtpPeer(
        mode="starttls",
        cert=ca.server_cert(),
        users={"u": "pw-123456"},
        pipelining=True,
        refuse={"nobody@dest.example": "550 5.1.1 No such user"},
    )
    with peer:
        account_id = _starttls_account(tls_container, peer.port)
        to = ["a@dest.example", "nobody@dest.example", "b@dest.example", "c@dest.example"]
        ids = [
            tls_container.outbox.submit(
                SYSTEM, draft(account_id, address, subject=f"m{n}", text=f".dot {n}\nend")
            ).message.id
            for n, address in enumerate(to)
        ]
        drain(tls_container)
        received = peer.messages
    statuses = [tls_container.outbox.get(SYSTEM, i).status for i in ids]
    assert statuses == [MessageStatus.SENT, MessageStatus.FAILED, *[MessageStatus.SENT] * 2]
    sent = [i for i, status in zip(ids, statuses, strict=True) if status is MessageStatus.SENT]
    stored = [tls_container.outbox.raw(SYSTEM, i) for i in sent]
    # Byte for byte, but for the CRLF that SMTP needs before the final "." (RFC 5321 §4.1.1.4).
    assert [m.raw for m in received] == [r if r.endswith(b"\r\n") else r + b"\r\n" for r in stored]
    assert [m.rcpt_tos for m in received] == [
        ("a@dest.example",),
        ("b@dest.example",),
        ("c@dest.example",),
    ]
