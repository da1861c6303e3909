"""The result of a connection test, and the rules that turn a failure into plain words.

A probe (protocols/) runs steps; each step ends ok, failed, skipped or warning. The first failure
is classified by `classify()` into an ErrorClass, a sentence, a hint and the form field at fault.
Classification reads standard-library exceptions (socket, ssl, smtplib, poplib, imaplib — which
IMAPClient's errors derive from) and Postroom's own error tree; nothing here does I/O.
"""

from __future__ import annotations

import imaplib
import poplib
import smtplib
import socket
import ssl
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

from postroom import errors
from postroom.domain.accounts import Security


class ErrorClass(StrEnum):
    DNS = "dns"
    REFUSED = "refused"
    TIMEOUT = "timeout"
    TLS_HANDSHAKE = "tls_handshake"
    TLS_VERIFY = "tls_verify"
    STARTTLS_UNAVAILABLE = "starttls_unavailable"
    AUTH_FAILED = "auth_failed"
    AUTH_UNSUPPORTED = "auth_unsupported"
    SENDER_REJECTED = "sender_rejected"
    RECIPIENT_REJECTED = "recipient_rejected"
    PROTOCOL_ERROR = "protocol_error"
    UNEXPECTED_REPLY = "unexpected_reply"
    DESTINATION_REFUSED = "destination_refused"


class StepOutcome(StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"
    WARNING = "warning"


class Field(StrEnum):
    """The form field a failure points at."""

    HOST = "host"
    PORT = "port"
    SECURITY = "security"
    USERNAME = "username"
    PASSWORD = "password"  # noqa: S105 - a field name, not a secret
    FROM_ADDRESS = "from_address"


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    outcome: StepOutcome
    elapsed_ms: int
    message: str = ""


@dataclass(frozen=True, slots=True)
class TlsDetails:
    version: str
    cipher: str
    subject: str = ""
    issuer: str = ""
    sans: tuple[str, ...] = ()
    not_after: datetime | None = None
    days_left: int | None = None
    verified: bool = True


@dataclass(frozen=True, slots=True)
class TranscriptEntry:
    """One line of a conversation: who spoke ('client', 'server', 'info'), when, what."""

    direction: str
    ms: int
    text: str


@dataclass(frozen=True, slots=True)
class Failure:
    """A classified failure: what went wrong, in words a user can act on."""

    error_class: ErrorClass
    message: str
    hint: str = ""
    field: Field | None = None


@dataclass(frozen=True, slots=True)
class CheckResult:
    protocol: str
    ok: bool
    steps: tuple[Step, ...] = ()
    error_class: ErrorClass | None = None
    error_message: str = ""
    hint: str = ""
    field: Field | None = None
    tls: TlsDetails | None = None
    transcript: tuple[TranscriptEntry, ...] = ()
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (enums as their values, datetimes as ISO 8601)."""
        data = asdict(self)
        if self.tls is not None and self.tls.not_after is not None:
            data["tls"]["not_after"] = self.tls.not_after.isoformat()
        return data


@dataclass(frozen=True, slots=True)
class ProbeContext:
    """Where a failure happened: which protocol, which step, against what."""

    protocol: str
    step: str
    host: str
    port: int
    security: Security


IMPLICIT_TLS_PORTS = frozenset({465, 993, 995})
_PLAINTEXT_PORTS = frozenset({25, 110, 143})
# OpenSSL reasons seen when the peer answers a ClientHello with plain text (e.g. "220 ...").
_PLAINTEXT_REPLY_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"}
)
# X509_V_ERR_* codes (openssl/x509_vfy.h) that deserve their own hint.
_CERT_EXPIRED, _SELF_SIGNED, _SELF_SIGNED_IN_CHAIN, _UNKNOWN_ISSUER = 10, 18, 19, 20
_NAME_MISMATCH = frozenset({62, 64})  # X509_V_ERR_HOSTNAME_MISMATCH, _IP_ADDRESS_MISMATCH


def exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception and those it was raised from or during, nearest first."""
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


_E = TypeVar("_E", bound=BaseException)


def _find(chain: list[BaseException], kind: type[_E]) -> _E | None:
    return next((e for e in chain if isinstance(e, kind)), None)


def _reply(exc: BaseException) -> tuple[int, str] | None:
    if isinstance(exc, errors.ReplyError) and exc.code is not None:
        return exc.code, exc.text
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error
        return exc.smtp_code, text.decode(errors="replace") if isinstance(text, bytes) else text
    return None


def ssl_on_plaintext_hint(port: int) -> str:
    if port == 587:
        return "port 587 expects STARTTLS, not SSL"
    if port in _PLAINTEXT_PORTS:
        return f"port {port} expects STARTTLS or no encryption, not SSL"
    return f"the server on port {port} answers in plain text: choose STARTTLS (or none), not SSL"


def plaintext_on_ssl_hint(port: int, security: Security) -> str:
    chosen = "STARTTLS" if security is Security.STARTTLS else "an unencrypted connection"
    if port in IMPLICIT_TLS_PORTS:
        return f"port {port} expects SSL, not {chosen}"
    return (
        "the server accepted the connection but never greeted; "
        "if it expects implicit TLS, choose SSL"
    )


def classify(exc: BaseException, ctx: ProbeContext) -> Failure:
    """Turn an exception raised during step `ctx.step` into a Failure."""
    chain = exception_chain(exc)
    where = f"{ctx.host}:{ctx.port}"
    if refused := _find(chain, errors.DestinationRefused):
        return Failure(ErrorClass.DESTINATION_REFUSED, refused.message, "", Field.HOST)
    if _find(chain, socket.gaierror):
        return Failure(
            ErrorClass.DNS,
            f"the host name {ctx.host!r} could not be resolved",
            "check the spelling; the server is usually the part after @ or a name your "
            "provider gives (e.g. smtp.example.com)",
            Field.HOST,
        )
    if _find(chain, ConnectionRefusedError):
        return Failure(
            ErrorClass.REFUSED,
            f"nothing accepts connections on {where}",
            f"check the port: is the service really on port {ctx.port}?",
            Field.PORT,
        )
    if verify := _find(chain, ssl.SSLCertVerificationError):
        return _verify_failure(verify, ctx)
    if _find(chain, TimeoutError):
        return _timeout_failure(ctx)
    if (tls_error := _find(chain, ssl.SSLError)) and not isinstance(tls_error, ssl.SSLEOFError):
        hint = f"the TLS handshake failed ({tls_error.reason or tls_error})"
        if ctx.security is Security.SSL and tls_error.reason in _PLAINTEXT_REPLY_REASONS:
            hint = ssl_on_plaintext_hint(ctx.port)
        return Failure(
            ErrorClass.TLS_HANDSHAKE, f"TLS could not be set up with {where}", hint, Field.SECURITY
        )
    for item in chain:
        if (reply := _reply(item)) is not None:
            return _reply_failure(*reply, ctx)
    if _find(chain, smtplib.SMTPNotSupportedError) and ctx.step == "auth":
        return _auth_unsupported("the server offers no authentication mechanism we support")
    if isinstance(exc, imaplib.IMAP4.error) and ctx.step == "login":
        return Failure(
            ErrorClass.AUTH_FAILED,
            f"the server rejected the login: {exc}",
            "check the user name and password",
            Field.PASSWORD,
        )
    if isinstance(exc, poplib.error_proto) and ctx.step in ("user", "pass"):
        return Failure(
            ErrorClass.AUTH_FAILED,
            f"the server rejected the login: {exc}",
            "check the user name and password",
            Field.PASSWORD,
        )
    if is_disconnect(chain):
        if ctx.step == "greeting":
            return Failure(
                ErrorClass.PROTOCOL_ERROR,
                f"{where} closed the connection",
                "the server closed the connection right after connecting; it may block "
                "this address or expect TLS",
            )
        return Failure(
            ErrorClass.PROTOCOL_ERROR,
            f"the server closed the connection during {ctx.step}",
            "the server ended the conversation unexpectedly",
        )
    return Failure(ErrorClass.PROTOCOL_ERROR, f"{ctx.step} failed: {exc}", "")


def is_disconnect(chain: list[BaseException]) -> bool:
    """True when the peer closed or reset the connection (anywhere in `chain`)."""
    for item in chain:
        if isinstance(
            item,
            smtplib.SMTPServerDisconnected | ConnectionError | EOFError | ssl.SSLEOFError,
        ):
            return True
        if isinstance(item, imaplib.IMAP4.abort | poplib.error_proto) and "EOF" in str(item):
            return True
    return False


def _verify_failure(exc: ssl.SSLCertVerificationError, ctx: ProbeContext) -> Failure:
    code = exc.verify_code
    if code in _NAME_MISMATCH:
        hint = f"the certificate is issued for other names than {ctx.host!r}; use the name it shows"
    elif code == _CERT_EXPIRED:
        hint = "the server's certificate has expired; the provider must renew it"
    elif code in (_SELF_SIGNED, _SELF_SIGNED_IN_CHAIN, _UNKNOWN_ISSUER):
        hint = (
            "the certificate is self-signed or from an unknown authority; install a trusted "
            "certificate, or turn certificate verification off if you accept the risk"
        )
    else:
        hint = "the certificate could not be verified"
    return Failure(
        ErrorClass.TLS_VERIFY,
        f"the certificate of {ctx.host}:{ctx.port} is not trusted: {exc.verify_message}",
        hint,
        Field.SECURITY,
    )


def _timeout_failure(ctx: ProbeContext) -> Failure:
    where = f"{ctx.host}:{ctx.port}"
    if ctx.step == "connect":
        return Failure(
            ErrorClass.TIMEOUT,
            f"no answer from {where}",
            "the connection attempt timed out; a firewall may be dropping it",
            Field.PORT,
        )
    if ctx.step == "greeting" and ctx.security is not Security.SSL:
        return Failure(
            ErrorClass.TIMEOUT,
            f"{where} accepted the connection but sent no greeting",
            plaintext_on_ssl_hint(ctx.port, ctx.security),
            Field.SECURITY if ctx.port in IMPLICIT_TLS_PORTS else None,
        )
    return Failure(
        ErrorClass.TIMEOUT,
        f"the server stopped answering during {ctx.step}",
        "the server is too slow or the connection stalled; try again later",
    )


def _auth_unsupported(message: str) -> Failure:
    return Failure(
        ErrorClass.AUTH_UNSUPPORTED,
        message,
        "the server may offer authentication only over TLS: choose STARTTLS or SSL",
        Field.SECURITY,
    )


def _reply_failure(code: int, text: str, ctx: ProbeContext) -> Failure:
    said = f"{code} {text}".strip()
    if ctx.step in ("greeting", "connect"):
        if code == -1:
            return Failure(
                ErrorClass.PROTOCOL_ERROR,
                f"the greeting is not {ctx.protocol.upper()}: {text!r}",
                f"port {ctx.port} may belong to another service",
                Field.PORT,
            )
        return Failure(
            ErrorClass.UNEXPECTED_REPLY,
            f"the server refused the session: {said}",
            "the server is busy or does not accept connections from this address; try later",
        )
    if ctx.step == "starttls":
        return Failure(
            ErrorClass.STARTTLS_UNAVAILABLE,
            f"the server advertised STARTTLS but refused it: {said}",
            "the server cannot start TLS now; try SSL on port 465 or ask the provider",
            Field.SECURITY,
        )
    if ctx.step == "auth" or ctx.step == "login":
        if code == 535:
            return Failure(
                ErrorClass.AUTH_FAILED,
                f"the server rejected the credentials: {said}",
                "check the user name and password",
                Field.PASSWORD,
            )
        if code in (530, 534, 538):
            return _auth_unsupported(f"the server refused this authentication: {said}")
    if ctx.step == "mail_from":
        if code == 530:
            return Failure(
                ErrorClass.AUTH_FAILED,
                f"the server requires authentication: {said}",
                "set a user name and password",
                Field.USERNAME,
            )
        return Failure(
            ErrorClass.SENDER_REJECTED,
            f"the server refused the sender: {said}",
            "the account may not send as this address",
            Field.FROM_ADDRESS,
        )
    if ctx.step == "rcpt_to":
        return Failure(
            ErrorClass.RECIPIENT_REJECTED,
            f"the server refused the recipient: {said}",
            "the address does not exist, or the server does not relay for this account",
        )
    if code == -1:
        return Failure(ErrorClass.PROTOCOL_ERROR, f"{ctx.step}: unreadable reply {text!r}", "")
    return Failure(ErrorClass.UNEXPECTED_REPLY, f"{ctx.step}: unexpected reply {said}", "")
