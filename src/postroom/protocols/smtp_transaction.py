"""One SMTP mail transaction without the I/O: the bytes to send and what the replies mean.

    prepare(mail, features)  → Transaction: MAIL + RCPT… + DATA lines and the dot-stuffed body
    judge(recipients, replies) → Verdict: a result per recipient, and whether the body may go
    delivered(verdict, final)  → SendOutcome after the reply to the final "."

`SmtpSession` (protocols/smtp.py) decides when each part is written and read: lock-step, or
pipelined (RFC 2920) with the next message's envelope riding in the same write as this body.
Keeping the bytes and the judgement here means both paths mean exactly the same thing.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from postroom import errors
from postroom.domain.delivery import RecipientResult, Reply

# A recipient accepted at RCPT (RFC 5321 §4.2.2: 251 "will forward" accepts too).
ACCEPTED = (250, 251)


@dataclass(frozen=True, slots=True)
class Mail:
    """One message to send: the envelope (RFC 5321 §2.3.1) and the raw content."""

    envelope_from: str
    recipients: tuple[str, ...]
    raw: bytes


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


@dataclass(frozen=True, slots=True)
class Transaction:
    """A checked message as bytes: `commands` are MAIL, one RCPT per recipient and DATA (each
    with its CRLF, in that order); `payload` is the content ending with CRLF "." CRLF."""

    mail: Mail
    commands: tuple[bytes, ...]
    payload: bytes


def check(mail: Mail) -> None:
    """InvalidInput unless `mail` can be put on the wire as it is (before anything is sent)."""
    if not mail.recipients:
        raise errors.InvalidInput(fields={"recipients": "at least one recipient is needed"})
    check_addresses([mail.envelope_from, *mail.recipients])


def check_addresses(addresses: Sequence[str]) -> None:
    bad = [a for a in addresses if any(c in a for c in "\r\n\0")]
    if bad:
        raise errors.InvalidInput(fields={"address": "line breaks and NUL are not allowed"})


def prepare(mail: Mail, features: Collection[str]) -> Transaction:
    """The commands and payload of a `check`ed `mail` for a server offering `features` (the
    lower-case EHLO keywords). InvalidInput for UTF-8 addresses the server cannot take."""
    payload = dot_stuffed(mail.raw)
    options = [f"SIZE={len(payload)}"] if "size" in features else []
    if "8bitmime" in features and not mail.raw.isascii():
        options.append("BODY=8BITMIME")
    if not all(a.isascii() for a in [mail.envelope_from, *mail.recipients]):
        if "smtputf8" not in features:  # RFC 6531: UTF-8 addresses need SMTPUTF8
            raise errors.InvalidInput(
                fields={"recipients": "the server cannot take non-ASCII addresses"}
            )
        options.append("SMTPUTF8")
    # What smtplib's mail(), rcpt() and docmd("DATA") send, minus quoteaddr (see _path).
    # UTF-8 only matters with SMTPUTF8; without it every address was found to be ASCII.
    lines = [
        "mail FROM:" + " ".join([_path(mail.envelope_from), *options]),
        *("rcpt TO:" + _path(a) for a in mail.recipients),
        "data",
    ]
    return Transaction(mail, tuple(f"{line}\r\n".encode() for line in lines), payload)


def dot_stuffed(raw: bytes) -> bytes:
    """CRLF line ends (RFC 5321 §2.3.8), leading dots doubled (§4.5.2), then CRLF . CRLF.

    bytes.replace, not regular expressions: this runs once per message on the delivery path
    and is several times faster (a bare CR stays as it is, as before). Messages Postroom
    composed already have CRLF line ends; counting (memchr speed) spares them two copies.
    """
    if raw.count(b"\n") == raw.count(b"\r\n"):
        data = raw.replace(b"\n.", b"\n..")
    else:
        data = raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n").replace(b"\n.", b"\n..")
    if data.startswith(b"."):
        data = b"." + data
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


def _path(address: str) -> str:
    """An envelope address as an SMTP path (RFC 5321 §4.1.2); "" is the null path "<>".

    Callers pass bare addresses (checked by check_addresses), so smtplib's quoteaddr, which
    re-parses every address with email.utils, is not needed on the hot path.
    """
    return f"<{address}>"


@dataclass(frozen=True, slots=True)
class EnvelopeReplies:
    """The replies to a transaction's commands, in order. Lock-step stops early: after a
    refused MAIL there are no RCPT replies, and without an accepted recipient no DATA reply;
    pipelined, every command has its reply."""

    mail: Reply
    rcpt: tuple[Reply, ...] = ()
    data: Reply | None = None


class Action(enum.Enum):
    """What the session does after the envelope replies."""

    SEND_BODY = "send the body"
    RESET = "RSET (or drop the connection after a 421) and carry on"
    # DATA was answered 354 although no recipient was accepted: anything sent now is message
    # text, so only closing the connection before the final "." ends it (RFC 5321 §3.8).
    DROP = "close the connection without sending the final '.'"


@dataclass(frozen=True, slots=True)
class Verdict:
    """The envelope judged: `results` per recipient (final unless the body goes), the accepted
    addresses, and `data`, DATA's reply when it refused accepted recipients."""

    results: tuple[RecipientResult, ...]
    accepted: frozenset[str]
    action: Action
    data: Reply | None = None

    @property
    def outcome(self) -> SendOutcome:
        """The message's outcome when the body is not sent."""
        return SendOutcome(self.results, data=self.data)

    @property
    def closing(self) -> bool:
        """The server said 421: it is closing the channel (RFC 5321 §3.8)."""
        return any(r.code == 421 for r in self.results) or (
            self.data is not None and self.data.code == 421
        )


def judge(recipients: Sequence[str], replies: EnvelopeReplies) -> Verdict:
    """Per recipient: a refused MAIL refuses everyone (the RCPT replies after it do not count),
    else each recipient has its RCPT reply. The body goes only to accepted recipients after
    a 354; a DATA refusal becomes the accepted recipients' result."""
    mail = replies.mail
    if mail.code != 250:
        results = tuple(
            RecipientResult.from_reply(a, mail.code, mail.text, "mail") for a in recipients
        )
    else:
        results = tuple(
            RecipientResult.from_reply(a, r.code, r.text, "rcpt")
            for a, r in zip(recipients, replies.rcpt, strict=True)
        )
    accepted = frozenset(r.address for r in results if r.code in ACCEPTED)
    start = replies.data
    if start is None:
        return Verdict(results, accepted, Action.RESET)
    if not accepted:
        return Verdict(results, accepted, Action.DROP if start.code == 354 else Action.RESET)
    if start.code != 354:
        refused = tuple(_final(r, start, accepted) for r in results)
        return Verdict(refused, accepted, Action.RESET, data=start)
    return Verdict(results, accepted, Action.SEND_BODY)


def delivered(verdict: Verdict, final: Reply) -> SendOutcome:
    """The outcome once the final "." was answered: accepted recipients carry that reply."""
    return SendOutcome(
        tuple(_final(r, final, verdict.accepted) for r in verdict.results), data=final
    )


def _final(result: RecipientResult, reply: Reply, accepted: frozenset[str]) -> RecipientResult:
    if result.address not in accepted:
        return result
    return RecipientResult.from_reply(result.address, reply.code, reply.text, "data")
