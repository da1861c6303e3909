"""Checks of saved accounts against the real Postfix (submission + SASL through Dovecot, implicit
TLS, plain smtpd) and Dovecot (IMAP and POP3 in every security mode), and a test e-mail that
makes the round trip Postfix → LMTP → Dovecot."""

from __future__ import annotations

import time

import pytest

from postroom.domain.accounts import AuthMode, IncomingProtocol, Security
from postroom.domain.checks import ErrorClass, Field, StepOutcome
from postroom.domain.people import Actor
from postroom.storage.audit import LogFilter
from postroom.testing.dovecot import DovecotServer
from postroom.testing.postfix import PostfixServer
from postroom.wiring import Container

from .conftest import MakeAccount, incoming_draft, smtp_draft

SYSTEM = Actor.system()


@pytest.mark.parametrize("service", ["submission", "submissions", "smtp"])
def test_postfix_each_security_mode(
    container: Container,
    make_account: MakeAccount,
    postfix: PostfixServer,
    dovecot: DovecotServer,
    service: str,
) -> None:
    peer = postfix.endpoint_values()[service]
    authenticated = service != "smtp"  # plain smtpd offers no AUTH: loopback may relay
    draft = smtp_draft(
        peer.host,
        peer.port,
        peer.security,
        username="alice",
        password=dovecot.password("alice"),
        auth_mode=AuthMode.CENTRAL if authenticated else AuthMode.NONE,
        email=dovecot.address("alice"),
    )
    [result] = container.checks.check_account(SYSTEM, make_account(draft).id)
    assert result.ok, result
    steps = {s.name: s.outcome for s in result.steps}
    assert steps["auth"] is (StepOutcome.OK if authenticated else StepOutcome.SKIPPED)
    assert steps["data"] is StepOutcome.OK
    assert (result.tls is not None) == (peer.security is not Security.NONE)


def test_postfix_wrong_password(
    container: Container, make_account: MakeAccount, postfix: PostfixServer
) -> None:
    peer = postfix.endpoint_values()["submission"]
    draft = smtp_draft(peer.host, peer.port, peer.security, username="alice", password="wrong")
    [result] = container.checks.check_account(SYSTEM, make_account(draft).id)
    assert (result.error_class, result.field) == (ErrorClass.AUTH_FAILED, Field.PASSWORD)


@pytest.mark.parametrize(
    "service", ["imap", "imap_starttls", "imaps", "pop3", "pop3_starttls", "pop3s"]
)
def test_dovecot_each_protocol_and_security_mode(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer, service: str
) -> None:
    peer = dovecot.endpoint_values()[service]
    protocol = IncomingProtocol.POP3 if service.startswith("pop3") else IncomingProtocol.IMAP
    draft = incoming_draft(
        protocol, peer.host, peer.port, peer.security, "bob", dovecot.password("bob")
    )
    account = make_account(draft)
    [result] = container.checks.check_account(SYSTEM, account.id)
    assert result.ok, result
    assert result.protocol == protocol.value
    assert (result.tls is not None) == (peer.security is not Security.NONE)
    [entry] = container.log.query(SYSTEM, LogFilter(account_id=account.id)).items
    assert entry.source == ("POP3 Auth" if protocol is IncomingProtocol.POP3 else "IMAP Auth")


@pytest.mark.parametrize("service", ["imaps", "pop3s"])
def test_dovecot_wrong_password(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer, service: str
) -> None:
    peer = dovecot.endpoint_values()[service]
    protocol = IncomingProtocol.POP3 if service.startswith("pop3") else IncomingProtocol.IMAP
    draft = incoming_draft(protocol, peer.host, peer.port, peer.security, "bob", "wrong-one")
    [result] = container.checks.check_account(SYSTEM, make_account(draft).id)
    assert (result.error_class, result.field) == (ErrorClass.AUTH_FAILED, Field.PASSWORD)
    [entry] = container.log.query(SYSTEM, LogFilter(level="error")).items
    assert "failed" in entry.message


def test_test_email_round_trip_through_postfix_into_dovecot(
    container: Container, make_account: MakeAccount, postfix: PostfixServer, dovecot: DovecotServer
) -> None:
    peer = postfix.endpoint_values()["submissions"]
    draft = smtp_draft(
        peer.host,
        peer.port,
        peer.security,
        username="alice",
        password=dovecot.password("alice"),
        email=dovecot.address("alice"),
    )
    account = make_account(draft)
    before = dovecot.folder_status("carol")["MESSAGES"]
    result = container.checks.send_test_email(SYSTEM, account.id, dovecot.address("carol"))
    assert result.ok, result
    for _ in range(200):  # waiting for Postfix to deliver over LMTP, not timing it
        if dovecot.folder_status("carol")["MESSAGES"] > before:
            break
        time.sleep(0.05)
    assert dovecot.folder_status("carol")["MESSAGES"] == before + 1
