"""SMTP: the staged probe, a real test message, and the delivery session.

All three open through one handshake (protocols/smtp_connection.py); the delivery session
puts each message's bytes together and judges the replies with protocols/smtp_transaction.py.

The probe stops at the 354 after DATA and then *closes the connection*: after 354 everything
the client sends is message text, so RSET would become part of the message; a connection closed
before the final "." aborts the transaction (RFC 5321 §3.8, §4.1.1.4) and nothing is delivered.
"""

from __future__ import annotations

import contextlib
import smtplib
import socket
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from types import TracebackType

from postroom import errors
from postroom.domain.checks import CheckResult, ProbeContext, classify
from postroom.domain.delivery import Reply
from postroom.protocols.endpoints import Endpoint, NetworkPolicy
from postroom.protocols.probing import Probe, Session, as_error
from postroom.protocols.smtp_connection import WireSMTP, handshake, reply_text
from postroom.protocols.smtp_transaction import (
    ACCEPTED,
    Action,
    EnvelopeReplies,
    Mail,
    SendOutcome,
    Transaction,
    Verdict,
    check,
    check_addresses,
    delivered,
    dot_stuffed,
    judge,
    prepare,
)
from postroom.protocols.transcript import Transcript
from postroom.protocols.wire import Deadline, Wire

__all__ = ["Mail", "SendOutcome", "SmtpSession", "probe_smtp", "send_test_message"]


def _expect(code: int, text: bytes | str, *wanted: int) -> str:
    if code not in wanted:
        raise errors.ReplyError(code=code, text=reply_text(text))
    return f"{code} {reply_text(text)}"


def _quit(probe: Probe, smtp: WireSMTP) -> None:
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
        smtp = handshake(probe, policy)
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


def _envelope(probe: Probe, smtp: WireSMTP, sender: str, recipient: str) -> None:
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
    check_addresses([sender, recipient])
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, recipient, subject
    message["Date"] = formatdate(localtime=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(text)
    raw = message.as_bytes(policy=message.policy.clone(linesep="\r\n"))

    def body(probe: Probe) -> None:
        smtp = handshake(probe, policy)
        try:
            _envelope(probe, smtp, sender, recipient)
            with probe.step("data") as note:
                note.message = _expect(*smtp.docmd("DATA"), 354)
            with probe.step("message") as note:
                smtp.send(dot_stuffed(raw))
                note.message = "accepted: " + _expect(*smtp.getreply(), 250)
            _quit(probe, smtp)
        finally:
            smtp.close()

    return Probe("smtp", endpoint, deadline_s=deadline_s).run(body)


class SmtpSession(Session):
    """One SMTP connection reused for many messages.

        with SmtpSession(endpoint, policy=policy) as session:
            first = session.send(a.envelope_from, a.recipients, a.raw, then=b)
            second = session.send(b.envelope_from, b.recipients, b.raw)

    `open()` raises ConnectFailed, ProtocolTimeout, TlsFailed, AuthFailed, ReplyError or
    DestinationRefused; `handshake` keeps its CheckResult (steps + transcript) for logging.
    `send()` returns a SendOutcome for anything the server *said*, and raises (after closing
    the connection) when the conversation broke before the final ".".
    `operation_deadline_s` bounds open() and each send() separately. `transcript` records the
    whole conversation; without one only the handshake is recorded (in `handshake`).

    Pipelining (RFC 2920), when the server offers it: MAIL, every RCPT and DATA leave in one
    write. With `then` (the message the caller will send next) it also crosses messages, as
    §3.1 allows the content to be the first "command" of a group and DATA the last: this
    body, its final "." and `then`'s envelope leave in ONE write, so a run of messages costs
    one write and one round trip each. The replies to `then`'s envelope are read by the next
    send(), which must be for `then`: a failure there is `then`'s ("broke before the final
    '.'", raised), never this message's, whose outcome was returned first. Without
    PIPELINING every command waits for its reply and `then` changes nothing.
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
        self._smtp: WireSMTP | None = None
        self._wire: Wire | None = None
        # `then` of the last send(): its envelope was written, its replies are still unread.
        self._ahead: Transaction | None = None
        # After start(): the message whose body is out, and the `then` that rode along.
        self._written: tuple[Verdict, Transaction | None] | None = None
        self._step = "mail_from"  # where a failure happened, for classify()

    @property
    def is_open(self) -> bool:
        return self._smtp is not None

    @property
    def writes(self) -> int:
        """Writes to the socket on the current connection, handshake included (0 when closed):
        the measure of pipelining, one per message with PIPELINING and `then`."""
        return self._smtp.writes if self._smtp is not None else 0

    def open(self) -> None:
        if self._smtp is not None:
            return
        self._smtp, self._wire = self._open_with(handshake)

    def send(
        self,
        envelope_from: str,
        recipients: Sequence[str],
        raw: bytes,
        *,
        then: Mail | None = None,
    ) -> SendOutcome:
        """Send one message; `then` is the message the caller sends next (see the class).

        InvalidInput (bad addresses, no recipients, UTF-8 addresses without SMTPUTF8) is
        raised before anything is written; an invalid `then` just does not ride along, so its
        own send() raises. ValueError if the previous send() had another message as `then`.
        """
        early = self.start(Mail(envelope_from, tuple(recipients), raw), then=then)
        return early if early is not None else self.finish()

    @property
    def pipelining(self) -> bool:
        """The server offers PIPELINING (RFC 2920)."""
        return self._smtp is not None and self._smtp.has_extn("pipelining")

    def announce(self, mail: Mail) -> None:
        """With PIPELINING, write the envelope of the message the next start() is for, so its
        replies can be awaited (`waiting_on`) like those of a `then`; nothing when one is out
        already or the server does not pipeline. Raises as send() does."""
        if self._ahead is not None or not self.pipelining:
            return
        check(mail)
        smtp, _ = self._begin()
        tx = prepare(mail, smtp.esmtp_features)
        self._step = "mail_from"
        try:
            smtp.send_parts([b"".join(tx.commands)])
        except Exception as exc:
            raise self._broken(exc) from exc
        self._ahead = tx

    def fail(self, exc: Exception) -> errors.ProtocolError:
        """The caller gave up before the final "." (`exc`, e.g. no envelope replies in time):
        the connection is closed and `exc` classified, as send() would have raised it."""
        return self._broken(exc)

    def start(self, mail: Mail, *, then: Mail | None = None) -> SendOutcome | None:
        """send() up to the write of the body: the outcome when the message ends before (a
        refused envelope; a failed write), else None and `finish()` reads the answer. In
        between the caller may serve other connections until `waiting_on()` says it is here.
        Raises as send() does."""
        self.announce(mail)  # with PIPELINING the envelope is out (now, or with the last body)
        if self._ahead is None:
            check(mail)  # lock-step; an envelope already out was checked before it was written
        smtp, wire = self._begin()
        ahead, self._ahead = self._ahead, None
        if ahead is not None and ahead.mail is not mail and ahead.mail != mail:
            self._drop()  # that transaction is half done on the server; closing aborts it
            raise ValueError("send() is not for the message given as `then` before")
        tx = ahead if ahead is not None else prepare(mail, smtp.esmtp_features)
        try:
            replies = self._read_envelope(smtp, tx) if ahead else self._lockstep(smtp, tx)
        except Exception as exc:
            raise self._broken(exc) from exc
        verdict = judge(mail.recipients, replies)
        if verdict.action is Action.DROP:  # closing before the final "." sends nothing (§3.8)
            self._drop()
            return verdict.outcome
        if verdict.action is Action.RESET:
            return self._abandon(verdict)
        following = self._lookahead(smtp, then)
        self._step = "data"
        try:
            smtp.send_parts(
                [tx.payload, b"".join(following.commands)] if following else [tx.payload]
            )
        except Exception as exc:
            if following is None:
                raise self._broken(exc) from exc
            # This body's final "." and `then`'s envelope were one write, and sendall cannot
            # say how much of it left: the "." may have, so the message may have arrived.
            return self._unknown(wire, verdict, f"the write with the final '.' failed: {exc}")
        self._written = (verdict, following)
        return None

    def waiting_on(self) -> socket.socket | None:
        """The socket to wait on (readable) before the next reply can be read without waiting
        for the network; None when a whole reply line has already arrived, or when closed."""
        return self._smtp.waiting_on() if self._smtp is not None else None

    def finish(self) -> SendOutcome:
        """The outcome of the message whose body `start()` wrote: its answer read, or unknown
        when none came (the connection is closed then)."""
        if self._written is None or self._smtp is None or self._wire is None:
            raise ValueError("finish() without a message started")
        (verdict, following), self._written = self._written, None
        try:
            final = self._reply(self._smtp)
        except Exception as exc:
            return self._unknown(self._wire, verdict, f"no answer after the final '.': {exc}")
        if final.code == 421:
            self._drop()  # `then`'s envelope went with this connection; its send() reconnects
        else:
            self._ahead = following
        return delivered(verdict, final)

    def give_up(self, why: str) -> SendOutcome:
        """Instead of finish(), when the caller stopped waiting for the answer (`why`): the
        message may have been accepted (unknown), and the connection is closed."""
        if self._written is None or self._wire is None:
            raise ValueError("give_up() without a message started")
        (verdict, _), self._written = self._written, None
        return self._unknown(self._wire, verdict, f"no answer after the final '.': {why}")

    def reset(self) -> None:
        """RSET: abandon a half-done transaction and keep the connection.

        While a `then` is pending its DATA may have been answered 354, after which RSET would
        be message text: then the connection is closed instead, which aborts it (§3.8).
        """
        smtp, _ = self._begin()
        if self._ahead is not None:
            self._drop()
            return
        self._step = "rset"
        try:
            _expect(*smtp.rset(), 250)
        except Exception as exc:
            raise self._broken(exc) from exc

    def close(self) -> None:
        """QUIT politely; a server that already left is not an error. A pending `then` is
        abandoned by closing without QUIT (after a 354, QUIT would be message text)."""
        if self._smtp is None:
            return
        if self._ahead is None:
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

    def _begin(self) -> tuple[WireSMTP, Wire]:
        """Start an operation: the session must be open; the deadline starts now."""
        if self._smtp is None or self._wire is None:
            raise errors.ConnectFailed("the SMTP session is not open")
        self._wire.deadline = Deadline(self._deadline_s)
        return self._smtp, self._wire

    def _lockstep(self, smtp: WireSMTP, tx: Transaction) -> EnvelopeReplies:
        """Without PIPELINING: each command waits for its reply, and none is sent once the
        transaction cannot succeed."""
        self._step = "mail_from"
        mail = self._command(smtp, tx.commands[0])
        if mail.code != 250:
            return EnvelopeReplies(mail)
        self._step = "rcpt_to"
        rcpt = tuple(self._command(smtp, command) for command in tx.commands[1:-1])
        if not any(r.code in ACCEPTED for r in rcpt):
            return EnvelopeReplies(mail, rcpt)
        self._step = "data"
        return EnvelopeReplies(mail, rcpt, self._command(smtp, tx.commands[-1]))

    def _read_envelope(self, smtp: WireSMTP, tx: Transaction) -> EnvelopeReplies:
        """The replies to a pipelined envelope, in order: MAIL, one per RCPT, DATA."""
        self._step = "mail_from"
        mail = self._reply(smtp)
        self._step = "rcpt_to"
        rcpt = tuple(self._reply(smtp) for _ in tx.mail.recipients)
        self._step = "data"
        return EnvelopeReplies(mail, rcpt, self._reply(smtp))

    def _command(self, smtp: WireSMTP, command: bytes) -> Reply:
        smtp.send(command)
        return self._reply(smtp)

    @staticmethod
    def _reply(smtp: WireSMTP) -> Reply:
        code, text = smtp.getreply()
        if not 100 <= code <= 599:
            raise errors.ProtocolError(f"unreadable reply {reply_text(text)!r}")
        return Reply(code, reply_text(text))

    @staticmethod
    def _lookahead(smtp: WireSMTP, then: Mail | None) -> Transaction | None:
        """`then` ready to ride with this body; None without PIPELINING or when `then` is
        invalid (its own send() raises InvalidInput then, before anything is written)."""
        if then is None or not smtp.has_extn("pipelining"):
            return None
        try:
            check(then)
            return prepare(then, smtp.esmtp_features)
        except errors.InvalidInput:
            return None

    def _abandon(self, verdict: Verdict) -> SendOutcome:
        """End a refused transaction with RSET so the connection can carry the next message."""
        if verdict.closing:
            self._drop()
        else:
            # If RSET fails the next open() starts afresh; this message's outcome is known.
            with contextlib.suppress(errors.ProtocolError):
                self.reset()
        return verdict.outcome

    def _unknown(self, wire: Wire, verdict: Verdict, note: str) -> SendOutcome:
        """The final "." may have been taken: the caller re-sends with the same Message-ID."""
        wire.info(f"{note}; the message may have been accepted")
        self._drop()
        return SendOutcome(verdict.results, unknown=True)

    def _broken(self, exc: Exception) -> errors.ProtocolError:
        """Close the connection; `exc` classified as the failure of the step in progress."""
        self._drop()
        endpoint = self.endpoint
        context = ProbeContext("smtp", self._step, endpoint.host, endpoint.port, endpoint.security)
        return as_error(classify(exc, context), exc)

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
        self._smtp = None
        self._wire = None
        self._ahead = None
        self._written = None
