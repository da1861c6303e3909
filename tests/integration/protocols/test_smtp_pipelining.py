"""SmtpSession across messages (RFC 2920 §3.1): each body, its final "." and the next message's
envelope in one write; every per-message guarantee of send() kept, and the fault matrix."""

from __future__ import annotations

import pytest

from postroom import errors
from postroom.domain.delivery import ReplyClass
from postroom.protocols.endpoints import NetworkPolicy
from postroom.protocols.smtp import Mail, SendOutcome, SmtpSession
from postroom.protocols.transcript import Transcript
from postroom.testing.peers import DROP, SILENT, Action, Script, ScriptedPeer, SmtpPeer
from tests.integration.protocols.support import PASSWORD, USER, MakeEndpoint

PIPELINING = b"250-scripted.test\r\n250-SIZE 10000000\r\n250-8BITMIME\r\n250 PIPELINING\r\n"
OK = b"250 2.0.0 OK queued\r\n"


def mail(n: int, *recipients: str, body: str = "") -> Mail:
    raw = (
        f"From: s{n}@example.test\r\nSubject: message {n}\r\nMessage-ID: <m{n}@example.test>\r\n"
        f"\r\n{body or f'Body of message {n}.'}\r\n"
    ).encode()
    return Mail(f"s{n}@example.test", recipients or (f"r{n}@example.test",), raw)


def run(smtp: SmtpSession, mails: list[Mail]) -> list[SendOutcome | errors.PostroomError]:
    """What DeliveryService does: each message with the next as `then`, in order; a broken
    connection is opened again for the next message."""
    results: list[SendOutcome | errors.PostroomError] = []
    for index, current in enumerate(mails):
        if not smtp.is_open:
            smtp.open()
        then = mails[index + 1] if index + 1 < len(mails) else None
        try:
            results.append(
                smtp.send(current.envelope_from, current.recipients, current.raw, then=then)
            )
        except errors.PostroomError as exc:
            results.append(exc)
    return results


def session(
    port: int,
    make_endpoint: MakeEndpoint,
    policy: NetworkPolicy,
    transcript: Transcript | None = None,
    **kw: object,
) -> SmtpSession:
    return SmtpSession(
        make_endpoint(port, **kw), policy=policy, operation_deadline_s=10, transcript=transcript
    )


def scripted(*replies: tuple[bytes, Action], data_replies: tuple[Action, ...] = ()) -> Script:
    return Script(
        replies=((b"EHLO", PIPELINING), (b"DATA", b"354 go ahead\r\n"), *replies),
        data_replies=data_replies,
    )


def outcome(result: SendOutcome | errors.PostroomError) -> SendOutcome:
    assert isinstance(result, SendOutcome), result
    return result


def test_many_messages_one_write_each_byte_exact_in_order(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    mails = [mail(n) for n in range(1, 6)]
    mails[2] = mail(3, body=".leading dot\r\n..two dots\r\nnon-ASCII: zoë")
    with SmtpPeer(pipelining=True) as peer, session(peer.port, make_endpoint, policy) as smtp:
        before = smtp.writes
        results = run(smtp, mails)
        # The first envelope alone, then one write per message: body + "." + next envelope.
        assert smtp.writes - before == len(mails) + 1
        received = peer.messages
    assert [outcome(r).accepted for r in results] == [m.recipients for m in mails]
    assert [(m.mail_from, m.rcpt_tos, m.raw) for m in received] == [
        (m.envelope_from, m.recipients, m.raw) for m in mails
    ]


def test_without_pipelining_then_changes_nothing(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    mails = [mail(n) for n in range(1, 4)]
    with SmtpPeer() as peer, session(peer.port, make_endpoint, policy) as smtp:
        before = smtp.writes
        results = run(smtp, mails)
        assert smtp.writes - before == 4 * len(mails)  # MAIL, RCPT, DATA, body: lock-step
        received = peer.messages
    assert [outcome(r).accepted for r in results] == [m.recipients for m in mails]
    assert [m.raw for m in received] == [m.raw for m in mails]


def test_transcript_keeps_the_next_envelope_and_hides_body_and_password(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    transcript = Transcript("smtp")
    mails = [mail(1), mail(2)]
    with (
        SmtpPeer(pipelining=True, users={USER: PASSWORD}) as peer,
        session(peer.port, make_endpoint, policy, auth=True, transcript=transcript) as smtp,
    ):
        run(smtp, mails)
    texts = [(e.direction, e.text) for e in transcript.entries]
    first_body = next(i for i, (d, t) in enumerate(texts) if t.startswith("[message data"))
    # Message 1's data, then message 2's envelope from the same write, then the replies.
    assert [t.split(" ")[0] for _, t in texts[first_body + 1 : first_body + 4]] == [
        "mail",
        "rcpt",
        "data",
    ]
    size = len(mails[1].raw) + len(b".\r\n")
    assert texts[first_body + 1] == ("client", f"mail FROM:<s2@example.test> SIZE={size}")
    assert texts[first_body + 4] == ("server", "250 2.0.0 OK queued")  # to message 1's "."
    assert sum(t.startswith("[message data") for _, t in texts) == 2
    assert not any(PASSWORD in t or "Body of message" in t for _, t in texts)


def test_drop_after_the_dot_of_message_2_of_3(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    mails = [mail(n) for n in range(1, 4)]
    with ScriptedPeer(scripted(data_replies=(OK, DROP))) as peer:
        smtp = session(peer.port, make_endpoint, policy)
        results = run(smtp, mails)
        smtp.close()
        assert peer.connections == 2
    first, second, third = (outcome(r) for r in results)
    assert first.accepted == ("r1@example.test",)
    # Message 2 may have arrived: unknown (re-sent later with the same Message-ID) ...
    assert second.unknown
    assert second.data is None
    # ... while message 3, whose envelope rode with it, is not lost: sent after reconnecting.
    assert third.accepted == ("r3@example.test",)
    assert not third.unknown


def test_message_2_fails_after_message_1_outcome_is_returned(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    """The connection dies while message 2's envelope replies are read: message 1's outcome
    came first, message 2 is an ordinary failure before its final '.'."""
    with ScriptedPeer(scripted((b"MAIL FROM:<s2@", DROP))) as peer:
        smtp = session(peer.port, make_endpoint, policy)
        smtp.open()
        first = smtp.send(*_args(mail(1)), then=mail(2))
        assert first.accepted == ("r1@example.test",)
        with pytest.raises(errors.ConnectFailed):
            smtp.send(*_args(mail(2)))
        assert not smtp.is_open


def test_silence_on_the_next_envelope_times_out_that_message_only(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with ScriptedPeer(scripted((b"MAIL FROM:<s2@", SILENT))) as peer:
        smtp = session(peer.port, make_endpoint, policy, timeout_s=0.5)
        smtp.open()
        first = smtp.send(*_args(mail(1)), then=mail(2))
        with pytest.raises(errors.ProtocolTimeout):
            smtp.send(*_args(mail(2)))
    assert first.accepted == ("r1@example.test",)


def test_550_at_mail_of_message_2(make_endpoint: MakeEndpoint, policy: NetworkPolicy) -> None:
    mails = [mail(n) for n in range(1, 4)]
    refused = {"s2@example.test": "550 5.7.1 sender refused"}
    with (
        SmtpPeer(pipelining=True, refuse_senders=refused) as peer,
        session(peer.port, make_endpoint, policy) as smtp,
    ):
        before = smtp.writes
        first, second, third = (outcome(r) for r in run(smtp, mails))
        assert smtp.is_open  # RSET, and the same connection carries message 3
        # 1: envelope; 2: body 1 + envelope 2; 3: RSET; 4: envelope 3; 5: body 3.
        assert smtp.writes - before == 5
        received = peer.messages
    assert [(r.stage, r.code) for r in second.recipients] == [("mail", 550)]
    assert second.recipients[0].reply_class is ReplyClass.PERMANENT
    assert second.data is None
    assert first.accepted == ("r1@example.test",)
    assert third.accepted == ("r3@example.test",)
    assert [m.mail_from for m in received] == ["s1@example.test", "s3@example.test"]


def test_452_on_rcpt_of_message_2(make_endpoint: MakeEndpoint, policy: NetworkPolicy) -> None:
    mails = [mail(1), mail(2, "r2@example.test", "full@example.test"), mail(3, "full@example.test")]
    full = {"full@example.test": "452 4.2.2 mailbox full"}
    with (
        SmtpPeer(pipelining=True, refuse=full) as peer,
        session(peer.port, make_endpoint, policy) as smtp,
    ):
        first, second, third = (outcome(r) for r in run(smtp, mails))
        assert smtp.is_open
        received = peer.messages
    assert first.accepted == ("r1@example.test",)
    assert second.accepted == ("r2@example.test",)  # partial refusal: the other one got it
    by_address = {r.address: r for r in second.recipients}
    assert (by_address["full@example.test"].stage, by_address["full@example.test"].code) == (
        "rcpt",
        452,
    )
    # No recipient left: DATA is refused (503) and the body is not sent; RSET carries on.
    assert third.accepted == ()
    assert [(r.stage, r.code, r.reply_class) for r in third.recipients] == [
        ("rcpt", 452, ReplyClass.TRANSIENT)
    ]
    assert [m.rcpt_tos for m in received] == [("r1@example.test",), ("r2@example.test",)]


def test_all_recipients_refused_yet_354_drops_before_the_dot(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    mails = [mail(n) for n in range(1, 4)]
    script = scripted((b"RCPT TO:<r2@", b"550 5.1.1 no such user\r\n"))
    with ScriptedPeer(script) as peer:
        smtp = session(peer.port, make_endpoint, policy)
        first, second, third = (outcome(r) for r in run(smtp, mails))
        smtp.close()
        # Message 2's DATA got 354 although nobody was accepted: only closing ends it.
        assert peer.connections == 2
        dots = [line for line in peer.lines if line == b".\r\n"]
    assert len(dots) == 2  # messages 1 and 3; nothing of message 2 was sent as data
    assert [(r.stage, r.code) for r in second.recipients] == [("rcpt", 550)]
    assert first.accepted == ("r1@example.test",)
    assert third.accepted == ("r3@example.test",)


def test_554_after_data_of_message_1_with_message_2_in_flight(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    mails = [mail(n) for n in range(1, 4)]
    with ScriptedPeer(scripted(data_replies=(b"554 5.6.0 message refused\r\n",))) as peer:
        with session(peer.port, make_endpoint, policy) as smtp:
            before = smtp.writes
            first, second, third = (outcome(r) for r in run(smtp, mails))
            assert smtp.writes - before == len(mails) + 1
        assert peer.connections == 1
    assert [(r.stage, r.code, r.reply_class) for r in first.recipients] == [
        ("data", 554, ReplyClass.PERMANENT)
    ]
    assert second.accepted == ("r2@example.test",)
    assert third.accepted == ("r3@example.test",)


def test_421_as_final_reply_closes_and_the_next_message_reconnects(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    mails = [mail(n) for n in range(1, 4)]
    script = scripted(data_replies=(OK, b"421 4.3.2 shutting down\r\n"))
    with ScriptedPeer(script) as peer:
        smtp = session(peer.port, make_endpoint, policy)
        first, second, third = (outcome(r) for r in run(smtp, mails))
        smtp.close()
        assert peer.connections == 2
    assert first.accepted == ("r1@example.test",)
    assert [(r.stage, r.code, r.reply_class) for r in second.recipients] == [
        ("data", 421, ReplyClass.TRANSIENT)
    ]
    assert not second.unknown
    assert third.accepted == ("r3@example.test",)


def test_options_of_the_pipelined_envelope(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    utf8 = Mail(
        "zoë@example.test", ("jürgen@example.test",), "Subject: ü\r\n\r\nGrüße\r\n".encode()
    )
    ehlo = (
        b"250-scripted.test\r\n250-SIZE 100\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 PIPELINING\r\n"
    )
    script = Script(replies=((b"EHLO", ehlo), (b"DATA", b"354 go ahead\r\n")))
    with ScriptedPeer(script) as peer:
        with session(peer.port, make_endpoint, policy) as smtp:
            first, second = (outcome(r) for r in run(smtp, [mail(1), utf8]))
        lines = peer.lines
    size = len(utf8.raw) + len(b".\r\n")
    assert f"mail FROM:<zoë@example.test> SIZE={size} BODY=8BITMIME SMTPUTF8\r\n".encode() in lines
    assert second.accepted == ("jürgen@example.test",)
    assert first.accepted == ("r1@example.test",)


def test_an_invalid_next_message_does_not_ride_along(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    no_utf8 = Mail("s2@example.test", ("jürgen@example.test",), b"Subject: x\r\n\r\nx\r\n")
    injected = Mail("s3@example.test", ("a@example.test\r\nRCPT TO:<evil@example.test>",), b"x")
    with ScriptedPeer(scripted()) as peer, session(peer.port, make_endpoint, policy) as smtp:
        for bad in (no_utf8, injected):
            first = smtp.send(*_args(mail(1)), then=bad)
            assert first.accepted == ("r1@example.test",)
            written = smtp.writes
            with pytest.raises(errors.InvalidInput):
                smtp.send(*_args(bad))
            assert smtp.writes == written  # refused before anything was written
            assert smtp.is_open
    assert not any(b"evil" in line or "jürgen".encode() in line for line in peer.lines)


def test_a_send_for_another_message_than_then_is_refused(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer(pipelining=True) as peer:
        smtp = session(peer.port, make_endpoint, policy)
        smtp.open()
        smtp.send(*_args(mail(1)), then=mail(2))
        with pytest.raises(ValueError, match="then"):
            smtp.send(*_args(mail(3)))
        assert not smtp.is_open  # closing before message 2's "." aborted it
        received = peer.messages
    assert [m.mail_from for m in received] == ["s1@example.test"]


def test_close_with_a_pending_next_message_delivers_nothing_of_it(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer(pipelining=True) as peer:
        with session(peer.port, make_endpoint, policy) as smtp:
            smtp.send(*_args(mail(1)), then=mail(2))
        assert not smtp.is_open
        received = peer.messages
    assert [m.mail_from for m in received] == ["s1@example.test"]


def _args(m: Mail) -> tuple[str, tuple[str, ...], bytes]:
    return m.envelope_from, m.recipients, m.raw
