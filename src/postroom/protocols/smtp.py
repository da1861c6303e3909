"""SMTP: the staged probe, a real test message, and the delivery session.

All three share one handshake — connect → TLS (implicit, or STARTTLS; never silently plaintext)
→ greeting → EHLO → AUTH — built on smtplib with an explicit SSLContext, every byte passing
through a `Wire` (transcript + deadline).

The probe stops at the 354 after DATA and then *closes the connection*: after 354 everything
the client sends is message text, so RSET would become part of the message; a connection closed
before the final "." aborts the transaction (RFC 5321 §3.8, §4.1.1.4) and nothing is delivered.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

from postroom import errors
from postroom.domain.accounts import Security
from postroom.domain.checks import CheckResult, ErrorClass, Failure, Field, ProbeContext, classify
from postroom.domain.delivery import RecipientResult, Reply
from postroom.protocols import tls
from postroom.protocols.endpoints import Endpoint, NetworkPolicy
from postroom.protocols.probing import Probe, ProbeFailed, Session, as_error
from postroom.protocols.transcript import Transcript
from postroom.protocols.wire import (
    Deadline,
    Wire,
    tls_context,
    tls_established,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

# One reply longer than this is a hostile or broken server, not a long EHLO list.
MAX_REPLY_LINES = 1000


class _ReplyReader:
    """smtplib's reply file: every read bounded by the deadline, recorded, and size-checked."""

    def __init__(self, raw: IO[bytes], sock: socket.socket, wire: Wire) -> None:
        self._raw, self._sock, self._wire = raw, sock, wire
        self.lines = 0

    def readline(self, size: int = -1) -> bytes:
        self._wire.arm(self._sock)
        line = self._raw.readline(size)
        if line:
            self._wire.received(line)
        if 0 < size <= len(line) and not line.endswith(b"\n"):
            raise errors.ProtocolError(f"the server sent a line longer than {size - 1} bytes")
        self.lines += 1
        if self.lines > MAX_REPLY_LINES:
            raise errors.ProtocolError(f"the server sent more than {MAX_REPLY_LINES} reply lines")
        return line

    def close(self) -> None:
        self._raw.close()


class _WireSMTP(smtplib.SMTP):
    """smtplib over a socket we connected (policy-checked IP) and a recording reader."""

    def __init__(self, wire: Wire, sock: socket.socket, local_hostname: str) -> None:
        self._wire = wire
        self._connected = sock
        super().__init__(local_hostname=local_hostname, timeout=wire.endpoint.timeout_s)
        # starttls() sends SNI and checks the certificate against _host; connect() does not set
        # it (only the constructor does), and we never let the constructor connect.
        self._host = wire.endpoint.host

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self._connected

    def send(self, s: Buffer | str) -> None:
        data = s.encode(self.command_encoding) if isinstance(s, str) else bytes(s)
        if self.sock is not None:
            self._wire.arm(self.sock)
            self._wire.sent(data)
        super().send(data)

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = _ReplyReader(self.sock.makefile("rb"), self.sock, self._wire)
        if isinstance(self.file, _ReplyReader):
            self.file.lines = 0
        return super().getreply()


def _text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _address_literal(sock: socket.socket) -> str:
    """Our address as an EHLO argument (RFC 5321 §4.1.3) — no reverse DNS lookup needed."""
    ip = sock.getsockname()[0]
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


def _ehlo(smtp: _WireSMTP) -> str:
    code, text = smtp.ehlo()
    if code != 250:
        code, text = smtp.helo()
        if code != 250:
            raise errors.ReplyError(code=code, text=_text(text))
        return "the server does not speak ESMTP (HELO accepted)"
    features = [f"{k.upper()} {v.strip()}".strip() for k, v in smtp.esmtp_features.items()]
    return "extensions: " + (", ".join(features) or "none")


def _auth(smtp: _WireSMTP, endpoint: Endpoint, encrypted: bool) -> str:
    if not smtp.has_extn("auth"):
        raise ProbeFailed(
            Failure(
                ErrorClass.AUTH_UNSUPPORTED,
                "the server does not offer authentication (no AUTH in EHLO)",
                "the server may offer AUTH only after STARTTLS, or needs no user name",
                Field.SECURITY if not encrypted else Field.USERNAME,
            )
        )
    offered = smtp.esmtp_features["auth"].upper().split()
    # Over plaintext prefer CRAM-MD5, which does not reveal the password (RFC 2195).
    preference = ("PLAIN", "LOGIN", "CRAM-MD5") if encrypted else ("CRAM-MD5", "PLAIN", "LOGIN")
    mechanism = next((m for m in preference if m in offered), None)
    if mechanism is None:
        raise ProbeFailed(
            Failure(
                ErrorClass.AUTH_UNSUPPORTED,
                f"the server offers AUTH {' '.join(offered)}, none of PLAIN, LOGIN, CRAM-MD5",
                "ask the provider for PLAIN or LOGIN over TLS",
                Field.SECURITY,
            )
        )
    smtp.user, smtp.password = endpoint.username, endpoint.password_value
    handler = getattr(smtp, "auth_" + mechanism.lower().replace("-", "_"))
    smtp.auth(mechanism, handler)
    return f"authenticated as {endpoint.username} with {mechanism} (offered: {' '.join(offered)})"


def _handshake(probe: Probe, policy: NetworkPolicy) -> _WireSMTP:
    """connect → TLS → greeting → EHLO → STARTTLS → EHLO → AUTH, one step each."""
    endpoint, wire = probe.endpoint, probe.wire
    sock = probe.connect(policy)
    smtp: _WireSMTP | None = None
    try:
        smtp = _WireSMTP(wire, sock, endpoint.helo_name or _address_literal(sock))
        with probe.step("greeting") as note:
            code, greeting = smtp.connect(endpoint.host, endpoint.port)
            if code != 220:
                raise errors.ReplyError(code=code, text=_text(greeting))
            note.message = f"{code} {_text(greeting)}"
        with probe.step("ehlo") as note:
            note.message = _ehlo(smtp)
        if endpoint.security is Security.STARTTLS:
            with probe.step("starttls") as note:
                if not smtp.has_extn("starttls"):
                    raise ProbeFailed(
                        Failure(
                            ErrorClass.STARTTLS_UNAVAILABLE,
                            "the server does not offer STARTTLS",
                            f"the server on port {endpoint.port} cannot encrypt with STARTTLS; "
                            "choose SSL (usually port 465) or ask the provider",
                            Field.SECURITY,
                        )
                    )
                smtp.starttls(context=tls_context(endpoint))
                assert smtp.sock is not None  # starttls() raises when the link is gone
                probe.record_tls(tls_established(smtp.sock, wire))
                note.message = tls.summary(probe.tls) if probe.tls else ""
            with probe.step("ehlo") as note:
                note.message = "after STARTTLS: " + _ehlo(smtp)
        if endpoint.username:
            with probe.step("auth") as note:
                note.message = _auth(smtp, endpoint, endpoint.security is not Security.NONE)
        else:
            probe.skip("auth", "no user name configured")
        return smtp
    except BaseException:
        (smtp if smtp is not None else sock).close()
        raise


def _expect(code: int, text: bytes | str, *wanted: int) -> str:
    if code not in wanted:
        raise errors.ReplyError(code=code, text=_text(text))
    return f"{code} {_text(text)}"


def _quit(probe: Probe, smtp: _WireSMTP) -> None:
    with probe.step("quit") as note:
        try:
            smtp.quit()
            note.message = "connection closed"
        except (smtplib.SMTPException, OSError) as exc:
            note.warning, note.message = True, f"QUIT was not answered cleanly: {exc}"
            smtp.close()


def probe_smtp(
    endpoint: Endpoint,
    *,
    policy: NetworkPolicy,
    sender: str = "",
    recipient: str = "",
    deadline_s: float = 30.0,
) -> CheckResult:
    """Test an SMTP server as far as the 354 after DATA; nothing is ever sent.

    Without `sender` the envelope steps are skipped; without `recipient` RCPT and DATA are.
    """

    def body(probe: Probe) -> None:
        smtp = _handshake(probe, policy)
        try:
            _envelope(probe, smtp, sender, recipient)
            if recipient:
                with probe.step("data") as note:
                    said = _expect(*smtp.docmd("DATA"), 354)
                    note.message = f"{said} — closing without sending: nothing is delivered"
                smtp.close()
                return
            if sender:
                with probe.step("rset") as note:
                    note.message = _expect(*smtp.rset(), 250)
            _quit(probe, smtp)
        finally:
            smtp.close()

    return Probe("smtp", endpoint, deadline_s=deadline_s).run(body)


def _envelope(probe: Probe, smtp: _WireSMTP, sender: str, recipient: str) -> None:
    if not sender:
        probe.skip("mail_from", "no sender address given")
        return
    with probe.step("mail_from") as note:
        note.message = _expect(*smtp.mail(sender), 250)
    if not recipient:
        probe.skip("rcpt_to", "no recipient given")
        return
    with probe.step("rcpt_to") as note:
        note.message = _expect(*smtp.rcpt(recipient), 250, 251)


def send_test_message(
    endpoint: Endpoint,
    *,
    policy: NetworkPolicy,
    sender: str,
    recipient: str,
    deadline_s: float = 30.0,
    subject: str = "Postroom test message",
    text: str = "This is a test message sent by Postroom to check the account's settings.\n",
) -> CheckResult:
    """Really send a small message from `sender` to `recipient`; the result has the transcript."""
    _check_addresses([sender, recipient])
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, recipient, subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(text)
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))

    def body(probe: Probe) -> None:
        smtp = _handshake(probe, policy)
        try:
            _envelope(probe, smtp, sender, recipient)
            with probe.step("data") as note:
                note.message = _expect(*smtp.docmd("DATA"), 354)
            with probe.step("message") as note:
                smtp.send(_dot_stuffed(raw))
                note.message = "accepted: " + _expect(*smtp.getreply(), 250)
            _quit(probe, smtp)
        finally:
            smtp.close()

    return Probe("smtp", endpoint, deadline_s=deadline_s).run(body)


def _dot_stuffed(raw: bytes) -> bytes:
    """CRLF line ends (RFC 5321 §2.3.8), leading dots doubled (§4.5.2), then CRLF . CRLF.

    bytes.replace, not regular expressions: this runs once per message on the delivery path
    and is several times faster (a bare CR stays as it is, as before).
    """
    data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").replace(b"\n.", b"\n..")
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _path(address: str) -> str:
    """An envelope address as an SMTP path (RFC 5321 §4.1.2); "" is the null path "<>".

    Callers pass bare addresses (checked by _check_addresses), so smtplib's quoteaddr, which
    re-parses every address with email.utils, is not needed on the hot path.
    """
    return f"<{address}>"


def _check_addresses(addresses: Sequence[str]) -> None:
    bad = [a for a in addresses if any(c in a for c in "\r\n\0")]
    if bad:
        raise errors.InvalidInput(fields={"address": "line breaks and NUL are not allowed"})


@dataclass(frozen=True, slots=True)
class SendOutcome:
    """What happened to one message: a final result per recipient, and the DATA reply.

    `unknown` is True when the connection was lost after the final "." was sent: the server
    may or may not have accepted the message. Re-send it with the same Message-ID.
    Recipients refused at RCPT keep their RCPT reply; accepted ones carry the DATA reply.
    """

    recipients: tuple[RecipientResult, ...]
    data: Reply | None = None
    unknown: bool = False

    @property
    def accepted(self) -> tuple[str, ...]:
        return tuple(
            r.address for r in self.recipients if r.stage == "data" and 200 <= r.code < 300
        )


class SmtpSession(Session):
    """One SMTP connection reused for many messages.

        with SmtpSession(endpoint, policy=policy) as session:
            outcome = session.send("a@example.com", ["b@example.net"], raw)

    `open()` raises ConnectFailed, ProtocolTimeout, TlsFailed, AuthFailed, ReplyError or
    DestinationRefused; `handshake` keeps its CheckResult (steps + transcript) for logging.
    `send()` returns a SendOutcome for anything the server *said*, and raises (after closing
    the connection) when the conversation broke before the final ".".
    `operation_deadline_s` bounds open() and each send() separately. `transcript` records the
    whole conversation; without one only the handshake is recorded (in `handshake`).
    """

    protocol = "smtp"

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        policy: NetworkPolicy,
        operation_deadline_s: float | None = 60.0,
        transcript: Transcript | None = None,
    ) -> None:
        super().__init__(
            endpoint, policy=policy, deadline_s=operation_deadline_s, transcript=transcript
        )
        self._smtp: _WireSMTP | None = None
        self._wire: Wire | None = None

    @property
    def is_open(self) -> bool:
        return self._smtp is not None

    def open(self) -> None:
        if self._smtp is not None:
            return
        self._smtp, self._wire = self._open_with(_handshake)

    def send(self, envelope_from: str, recipients: Sequence[str], raw: bytes) -> SendOutcome:
        if not recipients:
            raise errors.InvalidInput(fields={"recipients": "at least one recipient is needed"})
        _check_addresses([envelope_from, *recipients])
        smtp, wire = self._begin()
        payload = _dot_stuffed(raw)
        options = [f"SIZE={len(payload)}"] if smtp.has_extn("size") else []
        if smtp.has_extn("8bitmime") and not raw.isascii():
            options.append("BODY=8BITMIME")
        if not all(a.isascii() for a in [envelope_from, *recipients]):
            if not smtp.has_extn("smtputf8"):  # RFC 6531: UTF-8 addresses need SMTPUTF8
                raise errors.InvalidInput(
                    fields={"recipients": "the server cannot take non-ASCII addresses"}
                )
            options.append("SMTPUTF8")
            smtp.command_encoding = "utf-8"
        # RFC 2920: with PIPELINING, MAIL, every RCPT and DATA leave in one write and their
        # replies are read in order: two round trips per message instead of 3 + recipients.
        # Without it each command waits for its reply. The lines are what smtplib's mail(),
        # rcpt() and docmd() send, minus quoteaddr (see _path).
        pipelined = smtp.has_extn("pipelining")
        lines = [
            "mail FROM:" + " ".join([_path(envelope_from), *options]),
            *("rcpt TO:" + _path(a) for a in recipients),
            "data",
        ]
        pending = iter(lines)
        step = "mail_from"

        def reply() -> Reply:
            line = next(pending)
            if not pipelined:
                smtp.send(line + "\r\n")
            return self._reply(smtp.getreply())

        try:
            if pipelined:
                smtp.send("".join(line + "\r\n" for line in lines))
            mail = reply()
            if mail.code != 250 and not pipelined:
                return self._abandon(
                    [
                        RecipientResult.from_reply(r, mail.code, mail.text, "mail")
                        for r in recipients
                    ]
                )
            step = "rcpt_to"
            results = []
            for address in recipients:
                answer = reply()  # after a refused MAIL (pipelined) only MAIL's reply counts
                stage, answer = ("rcpt", answer) if mail.code == 250 else ("mail", mail)
                results.append(RecipientResult.from_reply(address, answer.code, answer.text, stage))
            accepted = {r.address for r in results if r.code in (250, 251)}
            if not accepted and not pipelined:
                return self._abandon(results)
            step = "data"
            start = reply()
            if not accepted:
                if start.code == 354:  # closing before the final "." sends nothing (§3.8)
                    self._drop()
                    return SendOutcome(tuple(results))
                return self._abandon(results)
            if start.code != 354:
                return self._abandon([_final(r, start, accepted) for r in results], data=start)
            smtp.send(payload)
        except Exception as exc:
            self._drop()
            context = ProbeContext(
                "smtp", step, self.endpoint.host, self.endpoint.port, self.endpoint.security
            )
            raise as_error(classify(exc, context), exc) from exc
        try:
            final = self._reply(smtp.getreply())
        except Exception as exc:
            wire.info(f"no answer after the final '.': {exc}; the message may have been accepted")
            self._drop()
            return SendOutcome(tuple(results), unknown=True)
        if final.code == 421:
            self._drop()
        return SendOutcome(tuple(_final(r, final, accepted) for r in results), data=final)

    def reset(self) -> None:
        """RSET: abandon a half-done transaction and keep the connection."""
        smtp, _ = self._begin()
        try:
            _expect(*smtp.rset(), 250)
        except Exception as exc:
            self._drop()
            context = ProbeContext(
                "smtp", "rset", self.endpoint.host, self.endpoint.port, self.endpoint.security
            )
            raise as_error(classify(exc, context), exc) from exc

    def close(self) -> None:
        """QUIT politely; a server that already left is not an error."""
        if self._smtp is None:
            return
        with contextlib.suppress(smtplib.SMTPException, OSError, errors.ProtocolError):
            smtp, _ = self._begin()
            smtp.quit()
        self._drop()

    def __enter__(self) -> SmtpSession:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _begin(self) -> tuple[_WireSMTP, Wire]:
        """Start an operation: the session must be open; the deadline starts now."""
        if self._smtp is None or self._wire is None:
            raise errors.ConnectFailed("the SMTP session is not open")
        self._wire.deadline = Deadline(self._deadline_s)
        return self._smtp, self._wire

    @staticmethod
    def _reply(answer: tuple[int, Any]) -> Reply:
        code, text = answer
        if not 100 <= code <= 599:
            raise errors.ProtocolError(f"unreadable reply {_text(text)!r}")
        return Reply(code, _text(text))

    def _abandon(self, results: list[RecipientResult], data: Reply | None = None) -> SendOutcome:
        """End a refused transaction with RSET so the connection can carry the next message."""
        codes = {r.code for r in results} | ({data.code} if data else set())
        if 421 in codes:  # the server is closing the channel (RFC 5321 §3.8)
            self._drop()
        else:
            # If RSET fails the next open() starts afresh; this message's outcome is known.
            with contextlib.suppress(errors.ProtocolError):
                self.reset()
        return SendOutcome(tuple(results), data=data)

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None
        self._wire = None


def _final(result: RecipientResult, reply: Reply, accepted: set[str]) -> RecipientResult:
    if result.address not in accepted:
        return result
    return RecipientResult.from_reply(result.address, reply.code, reply.text, "data")
