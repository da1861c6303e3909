"""probe_smtp and SmtpSession against a real Postfix (SASL through Dovecot, LMTP delivery)."""

from __future__ import annotations

import secrets
from email.utils import make_msgid

import pytest

from postroom.domain.accounts import Security
from postroom.domain.checks import ErrorClass, Field
from postroom.protocols.endpoints import LOOPBACK_CIDRS, Endpoint, NetworkPolicy, Secret
from postroom.protocols.smtp import Mail, SmtpSession, probe_smtp
from postroom.testing.dovecot import DovecotServer
from postroom.testing.postfix import PostfixServer

POLICY = NetworkPolicy(allowed_cidrs=LOOPBACK_CIDRS)


@pytest.fixture
def user(dovecot: DovecotServer) -> str:
    name = f"smtp-{secrets.token_hex(4)}"
    dovecot.add_user(name, secrets.token_urlsafe(12))
    return name


def endpoint(
    postfix: PostfixServer, dovecot: DovecotServer, service: str, user: str = "", **kw: object
) -> Endpoint:
    where = postfix.endpoint_values()[service]
    values: dict[str, object] = {
        "username": user,
        "password": Secret(dovecot.password(user)) if user else None,
        "cafile": str(postfix.cafile),
        "timeout_s": 10.0,
    } | kw
    return Endpoint(where.host, where.port, where.security, **values)  # type: ignore[arg-type]


@pytest.mark.parametrize("service", ["submission", "submissions"])
def test_probe_succeeds_with_auth(
    service: str, postfix: PostfixServer, dovecot: DovecotServer, user: str
) -> None:
    result = probe_smtp(
        endpoint(postfix, dovecot, service, user),
        policy=POLICY,
        sender=dovecot.address(user),
        recipient=dovecot.address(user),
    )
    assert result.ok, (result.error_message, result.transcript)
    assert result.tls is not None
    assert dovecot.password(user) not in str(result.to_dict())


def test_wrong_password_is_auth_failed(
    postfix: PostfixServer, dovecot: DovecotServer, user: str
) -> None:
    result = probe_smtp(
        endpoint(postfix, dovecot, "submission", user, password=Secret("not-it")),
        policy=POLICY,
        sender=dovecot.address(user),
    )
    assert result.error_class is ErrorClass.AUTH_FAILED
    assert result.field is Field.PASSWORD


def test_relay_to_foreign_domain_is_recipient_rejected(
    postfix: PostfixServer, dovecot: DovecotServer
) -> None:
    result = probe_smtp(
        endpoint(postfix, dovecot, "smtp"),
        policy=POLICY,
        sender="someone@example.test",
        recipient="somebody@elsewhere.example",
    )
    assert result.error_class is ErrorClass.RECIPIENT_REJECTED


def test_starttls_against_submissions_port_says_so(
    postfix: PostfixServer, dovecot: DovecotServer
) -> None:
    where = postfix.endpoint_values()["submissions"]
    result = probe_smtp(
        Endpoint(where.host, where.port, Security.STARTTLS, timeout_s=1.0),
        policy=POLICY,
    )
    assert result.error_class is ErrorClass.TIMEOUT
    assert "choose SSL" in result.hint


def test_session_delivers_through_postfix_to_dovecot(
    postfix: PostfixServer, dovecot: DovecotServer, user: str
) -> None:
    message_id = make_msgid(domain="postroom.test")
    address = dovecot.address(user)
    raw = (
        f"From: {address}\r\nTo: {address}\r\nSubject: round trip\r\n"
        f"Message-ID: {message_id}\r\n\r\nHello through Postfix.\r\n"
    ).encode()
    with SmtpSession(endpoint(postfix, dovecot, "submission", user), policy=POLICY) as session:
        outcome = session.send(address, [address], raw)
    assert outcome.accepted == (address,)
    assert outcome.data is not None
    assert outcome.data.enhanced_status == "2.0.0"
    assert dovecot.find_message(user, message_id, timeout_s=20) is not None


def test_session_pipelines_messages_through_postfix(
    postfix: PostfixServer, dovecot: DovecotServer, user: str
) -> None:
    """Postfix offers PIPELINING: each body carries the next envelope (RFC 2920 §3.1)."""
    address = dovecot.address(user)
    ids = [make_msgid(domain="postroom.test") for _ in range(3)]
    mails = [
        Mail(
            address,
            (address,),
            f"From: {address}\r\nTo: {address}\r\nSubject: pipelined {n}\r\n"
            f"Message-ID: {message_id}\r\n\r\nMessage {n}.\r\n".encode(),
        )
        for n, message_id in enumerate(ids)
    ]
    with SmtpSession(endpoint(postfix, dovecot, "submission", user), policy=POLICY) as session:
        before = session.writes
        outcomes = [
            session.send(m.envelope_from, m.recipients, m.raw, then=nxt)
            for m, nxt in zip(mails, [*mails[1:], None], strict=True)
        ]
        assert session.writes - before == len(mails) + 1
    assert [o.accepted for o in outcomes] == [(address,)] * len(mails)
    for message_id in ids:
        assert dovecot.find_message(user, message_id, timeout_s=20) is not None
