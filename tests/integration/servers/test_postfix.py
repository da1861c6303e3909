"""The private Postfix peer and smtp-sink work as the other tests expect: submission needs
STARTTLS and AUTH (checked by Dovecot), implicit TLS works, nothing leaves the machine, and
mail to the test domain makes the full round trip into Dovecot."""

from __future__ import annotations

import secrets
import smtplib
import subprocess
from email.message import EmailMessage

import pytest

from postroom.testing.dovecot import DovecotServer
from postroom.testing.peer import is_listening
from postroom.testing.postfix import PostfixServer, SmtpSink, smtp_sink_available, smtp_source_rate
from postroom.testing.services import missing_service


def _message(to: str, subject: str = "hello") -> tuple[str, EmailMessage]:
    msg = EmailMessage()
    msg["From"] = "alice@postroom.test"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Message-ID"] = message_id = f"<{secrets.token_hex(8)}@test.postroom>"
    msg.set_content("body\n")
    return message_id, msg


def _submission(postfix: PostfixServer) -> smtplib.SMTP:
    smtp = smtplib.SMTP(postfix.host, postfix.ports.submission, timeout=10)
    smtp.starttls(context=postfix.tls.client_context())
    return smtp


def test_submission_with_starttls_and_auth_accepts_mail(
    postfix: PostfixServer, dovecot: DovecotServer
) -> None:
    with _submission(postfix) as smtp:
        smtp.ehlo()
        assert "PLAIN" in smtp.esmtp_features["auth"].split()
        smtp.login("alice", dovecot.password("alice"))
        assert smtp.send_message(_message("bob@postroom.test")[1]) == {}


def test_submission_offers_no_auth_before_starttls(postfix: PostfixServer) -> None:
    with smtplib.SMTP(postfix.host, postfix.ports.submission, timeout=10) as smtp:
        smtp.ehlo()
        assert smtp.has_extn("starttls")
        assert not smtp.has_extn("auth")
        code, text = smtp.mail("alice@postroom.test")
        assert code == 530
        assert b"STARTTLS" in text


def test_submission_refuses_recipients_without_auth(postfix: PostfixServer) -> None:
    with _submission(postfix) as smtp:
        smtp.ehlo()
        smtp.mail("alice@postroom.test")
        code, _ = smtp.rcpt("bob@postroom.test")
        assert code == 554


def test_wrong_password_gets_535(postfix: PostfixServer) -> None:
    with _submission(postfix) as smtp, pytest.raises(smtplib.SMTPAuthenticationError) as failed:
        smtp.login("alice", "not-the-password")
    assert failed.value.smtp_code == 535


def test_implicit_tls_port_authenticates(postfix: PostfixServer, dovecot: DovecotServer) -> None:
    context = postfix.tls.client_context()
    port = postfix.ports.submissions
    with smtplib.SMTP_SSL(postfix.host, port, context=context, timeout=10) as smtp:
        code, _ = smtp.login("bob", dovecot.password("bob"))
        assert code == 235


def test_plain_port_offers_neither_tls_nor_auth(postfix: PostfixServer) -> None:
    with smtplib.SMTP(postfix.host, postfix.ports.smtp, timeout=10) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("starttls")
        assert not smtp.has_extn("auth")


def test_mail_outside_the_test_domain_is_refused(postfix: PostfixServer) -> None:
    with smtplib.SMTP(postfix.host, postfix.ports.smtp, timeout=10) as smtp:
        smtp.ehlo()
        smtp.mail("alice@postroom.test")
        code, text = smtp.rcpt("someone@example.com")
    assert code == 550
    assert b"disabled" in text


def test_round_trip_submission_to_dovecot(postfix: PostfixServer, dovecot: DovecotServer) -> None:
    message_id, msg = _message("carol@postroom.test", "round trip")
    context = postfix.tls.client_context()
    port = postfix.ports.submissions
    with smtplib.SMTP_SSL(postfix.host, port, context=context, timeout=10) as smtp:
        smtp.login("alice", dovecot.password("alice"))
        smtp.send_message(msg)
    fetched = dovecot.find_message("carol", message_id, timeout_s=30)
    assert fetched is not None
    assert b"Subject: round trip" in fetched


def test_sendmail_binary_submits_into_the_instance(
    postfix: PostfixServer, dovecot: DovecotServer
) -> None:
    message_id, msg = _message("bob@postroom.test", "via sendmail")
    subprocess.run([*postfix.sendmail_argv, "-t", "-i"], input=msg.as_bytes(), check=True)
    assert dovecot.find_message("bob", message_id, timeout_s=30) is not None


def test_smtp_sink_counts_messages_and_their_ids(smtp_sink: SmtpSink) -> None:
    ids = []
    with smtplib.SMTP(smtp_sink.host, smtp_sink.port, timeout=10) as smtp:
        for n in range(5):
            message_id, msg = _message("sink@postroom.test", f"n{n}")
            smtp.send_message(msg)
            ids.append(message_id)
    assert smtp_sink.wait_for(5) == 5
    assert smtp_sink.message_ids() == dict.fromkeys(ids, 1)


def test_smtp_source_rate_is_measured_at_the_sink(smtp_sink: SmtpSink) -> None:
    assert smtp_source_rate(smtp_sink.port, count=50, size=512) > 0
    assert smtp_sink.wait_for(50) == 50


@pytest.mark.postfix
def test_smtp_sink_stop_closes_the_port_and_removes_the_directory() -> None:
    reason = smtp_sink_available()
    if reason is not None:
        missing_service(reason)
    sink = SmtpSink(dump=False).start()
    assert is_listening(sink.port)
    sink.stop()
    assert not is_listening(sink.port)
    assert not sink.dir.exists()
