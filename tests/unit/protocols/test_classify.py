"""The classification table: exception + step → error class, field and hint."""

from __future__ import annotations

import imaplib
import smtplib
import socket
import ssl

import pytest

from postroom import errors
from postroom.domain.accounts import Security
from postroom.domain.checks import ErrorClass, Field, ProbeContext, classify


def ctx(step: str, port: int = 587, security: Security = Security.STARTTLS) -> ProbeContext:
    return ProbeContext("smtp", step, "mail.example.com", port, security)


def verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    exc = ssl.SSLCertVerificationError(1, f"certificate verify failed: {message}")
    exc.verify_code, exc.verify_message = code, message
    return exc


def ssl_error(reason: str) -> ssl.SSLError:
    exc = ssl.SSLError(1, f"[SSL: {reason}] {reason.lower()}")
    exc.reason = reason
    return exc


def chained(outer: BaseException, inner: BaseException) -> BaseException:
    """`outer` raised while handling `inner`, as smtplib does around socket errors."""
    try:
        try:
            raise inner
        except BaseException:
            raise outer  # noqa: B904 - the implicit context is the point
    except BaseException as exc:
        return exc


TABLE = [
    (errors.DestinationRefused("no"), ctx("connect"), ErrorClass.DESTINATION_REFUSED, Field.HOST),
    (socket.gaierror(-2, "Name or service not known"), ctx("connect"), ErrorClass.DNS, Field.HOST),
    (ConnectionRefusedError(111, "refused"), ctx("connect"), ErrorClass.REFUSED, Field.PORT),
    (TimeoutError("timed out"), ctx("connect"), ErrorClass.TIMEOUT, Field.PORT),
    (TimeoutError(), ctx("greeting", 465), ErrorClass.TIMEOUT, Field.SECURITY),
    (TimeoutError(), ctx("ehlo"), ErrorClass.TIMEOUT, None),
    (
        chained(smtplib.SMTPServerDisconnected("closed: timed out"), TimeoutError("timed out")),
        ctx("greeting"),
        ErrorClass.TIMEOUT,
        None,
    ),
    (
        verify_error(18, "self-signed certificate"),
        ctx("tls"),
        ErrorClass.TLS_VERIFY,
        Field.SECURITY,
    ),
    (
        verify_error(10, "certificate has expired"),
        ctx("tls"),
        ErrorClass.TLS_VERIFY,
        Field.SECURITY,
    ),
    (
        ssl_error("WRONG_VERSION_NUMBER"),
        ctx("tls", 587, Security.SSL),
        ErrorClass.TLS_HANDSHAKE,
        Field.SECURITY,
    ),
    (ssl_error("NO_SHARED_CIPHER"), ctx("starttls"), ErrorClass.TLS_HANDSHAKE, Field.SECURITY),
    (
        smtplib.SMTPResponseException(454, b"4.7.0 TLS not available"),
        ctx("starttls"),
        ErrorClass.STARTTLS_UNAVAILABLE,
        Field.SECURITY,
    ),
    (
        smtplib.SMTPAuthenticationError(535, b"5.7.8 bad credentials"),
        ctx("auth"),
        ErrorClass.AUTH_FAILED,
        Field.PASSWORD,
    ),
    (
        smtplib.SMTPAuthenticationError(538, b"5.7.11 encryption required"),
        ctx("auth"),
        ErrorClass.AUTH_UNSUPPORTED,
        Field.SECURITY,
    ),
    (errors.ReplyError(code=421, text="busy"), ctx("greeting"), ErrorClass.UNEXPECTED_REPLY, None),
    (
        errors.ReplyError(code=-1, text="HTTP/1.1"),
        ctx("greeting"),
        ErrorClass.PROTOCOL_ERROR,
        Field.PORT,
    ),
    (
        errors.ReplyError(code=553, text="not yours"),
        ctx("mail_from"),
        ErrorClass.SENDER_REJECTED,
        Field.FROM_ADDRESS,
    ),
    (
        errors.ReplyError(code=530, text="auth first"),
        ctx("mail_from"),
        ErrorClass.AUTH_FAILED,
        Field.USERNAME,
    ),
    (
        errors.ReplyError(code=550, text="no such user"),
        ctx("rcpt_to"),
        ErrorClass.RECIPIENT_REJECTED,
        None,
    ),
    (errors.ReplyError(code=502, text="no"), ctx("ehlo"), ErrorClass.UNEXPECTED_REPLY, None),
    (smtplib.SMTPServerDisconnected("closed"), ctx("greeting"), ErrorClass.PROTOCOL_ERROR, None),
    (ConnectionResetError(104, "reset"), ctx("ehlo"), ErrorClass.PROTOCOL_ERROR, None),
    (
        imaplib.IMAP4.error("NO [AUTHENTICATIONFAILED]"),
        ctx("login"),
        ErrorClass.AUTH_FAILED,
        Field.PASSWORD,
    ),
    (
        errors.ProtocolError("a line longer than 8192"),
        ctx("greeting"),
        ErrorClass.PROTOCOL_ERROR,
        None,
    ),
]


@pytest.mark.parametrize(("exc", "context", "expected", "field"), TABLE)
def test_classification_table(
    exc: BaseException, context: ProbeContext, expected: ErrorClass, field: Field | None
) -> None:
    failure = classify(exc, context)
    assert failure.error_class is expected
    assert failure.field == field
    assert failure.message


@pytest.mark.parametrize(
    ("port", "security", "step", "exc", "hint"),
    [
        (465, Security.STARTTLS, "greeting", TimeoutError(), "port 465 expects SSL, not STARTTLS"),
        (993, Security.NONE, "greeting", TimeoutError(), "port 993 expects SSL"),
        (
            587,
            Security.SSL,
            "tls",
            ssl_error("WRONG_VERSION_NUMBER"),
            "port 587 expects STARTTLS, not SSL",
        ),
        (
            143,
            Security.SSL,
            "tls",
            ssl_error("WRONG_VERSION_NUMBER"),
            "port 143 expects STARTTLS or no encryption",
        ),
        (2525, Security.SSL, "tls", ssl_error("WRONG_VERSION_NUMBER"), "answers in plain text"),
        (
            25,
            Security.NONE,
            "greeting",
            smtplib.SMTPServerDisconnected("x"),
            "closed the connection right after connecting",
        ),
    ],
)
def test_hints_say_what_to_change(
    port: int, security: Security, step: str, exc: BaseException, hint: str
) -> None:
    assert hint in classify(exc, ctx(step, port, security)).hint
