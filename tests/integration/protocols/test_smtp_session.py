"""SmtpSession: one reused connection, a result per recipient, and the 'unknown' case."""

from __future__ import annotations

import pytest

from postroom import errors
from postroom.domain.accounts import Security
from postroom.domain.delivery import ReplyClass
from postroom.protocols.endpoints import NetworkPolicy
from postroom.protocols.smtp import SmtpSession
from postroom.testing.peers import DROP, Script, ScriptedPeer, SmtpPeer
from postroom.testing.tls import LocalCA
from tests.integration.protocols.support import PASSWORD, USER, MakeEndpoint

SENDER = "sender@example.test"
RAW = b"From: sender@example.test\r\nTo: a@example.test\r\nSubject: hi\r\n\r\nHello.\r\n"
DATA_OK = ((b"DATA", b"354 go ahead\r\n"),)


def session(
    port: int, make_endpoint: MakeEndpoint, policy: NetworkPolicy, **kw: object
) -> SmtpSession:
    return SmtpSession(make_endpoint(port, **kw), policy=policy, operation_deadline_s=10)


def test_three_messages_on_one_connection(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with ScriptedPeer(Script(replies=DATA_OK)) as peer:
        with session(peer.port, make_endpoint, policy) as smtp:
            outcomes = [smtp.send(SENDER, [f"r{i}@example.test"], RAW) for i in range(3)]
        assert peer.connections == 1
        assert sum(line.upper().startswith(b"MAIL") for line in peer.lines) == 3
    assert all(o.accepted == (f"r{i}@example.test",) for i, o in enumerate(outcomes))
    assert all(o.data is not None and o.data.reply_class is ReplyClass.SUCCESS for o in outcomes)


def test_messages_arrive_over_starttls_with_auth(
    ca: LocalCA, make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer(mode="starttls", cert=ca.server_cert(), users={USER: PASSWORD}) as peer:
        with session(
            peer.port, make_endpoint, policy, security=Security.STARTTLS, auth=True
        ) as smtp:
            for i in range(3):
                smtp.send(SENDER, ["a@example.test"], RAW.replace(b"hi", f"msg {i}".encode()))
        received = peer.messages
    assert [m.raw.split(b"Subject: ")[1][:5] for m in received] == [b"msg 0", b"msg 1", b"msg 2"]
    assert smtp.handshake is not None
    assert smtp.handshake.tls is not None


def test_one_of_three_recipients_refused(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    refused = "nobody@example.test"
    with SmtpPeer(refuse={refused: "550 5.1.1 No such user"}) as peer:
        with session(peer.port, make_endpoint, policy) as smtp:
            outcome = smtp.send(SENDER, ["a@example.test", refused, "b@example.test"], RAW)
        (message,) = peer.messages
    assert message.rcpt_tos == ("a@example.test", "b@example.test")
    by_address = {r.address: r for r in outcome.recipients}
    assert by_address[refused].code == 550
    assert by_address[refused].stage == "rcpt"
    assert by_address[refused].enhanced_status == "5.1.1"
    assert by_address[refused].reply_class is ReplyClass.PERMANENT
    assert by_address["a@example.test"].stage == "data"
    assert outcome.accepted == ("a@example.test", "b@example.test")
    assert not outcome.unknown


def test_connection_dropped_after_final_dot_is_unknown(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with ScriptedPeer(Script(replies=DATA_OK, after_data=DROP)) as peer:
        smtp = session(peer.port, make_endpoint, policy)
        smtp.open()
        outcome = smtp.send(SENDER, ["a@example.test"], RAW)
        assert b".\r\n" in peer.lines
    assert outcome.unknown
    assert outcome.data is None
    assert not smtp.is_open


@pytest.mark.parametrize(
    ("script", "stage", "code", "expected"),
    [
        (
            Script(replies=((b"MAIL", b"451 4.3.0 try again later\r\n"),)),
            "mail",
            451,
            ReplyClass.TRANSIENT,
        ),
        (
            Script(replies=((b"RCPT", b"452 4.5.3 too many recipients\r\n"),)),
            "rcpt",
            452,
            ReplyClass.TRANSIENT,
        ),
        (
            Script(replies=DATA_OK, after_data=b"554 5.6.0 message refused\r\n"),
            "data",
            554,
            ReplyClass.PERMANENT,
        ),
    ],
    ids=["451-at-mail", "452-at-rcpt", "554-after-data"],
)
def test_reply_classes(
    script: Script,
    stage: str,
    code: int,
    expected: ReplyClass,
    make_endpoint: MakeEndpoint,
    policy: NetworkPolicy,
) -> None:
    with ScriptedPeer(script) as peer:
        with session(peer.port, make_endpoint, policy) as smtp:
            outcome = smtp.send(SENDER, ["a@example.test", "b@example.test"], RAW)
            assert smtp.is_open  # a refusal is an answer, not a broken connection
        if stage != "data":
            assert not any(line.upper().startswith(b"DATA") for line in peer.lines)
            assert any(line.upper().startswith(b"RSET") for line in peer.lines)
    assert [(r.stage, r.code, r.reply_class) for r in outcome.recipients] == [
        (stage, code, expected)
    ] * 2
    assert outcome.accepted == ()


def test_open_raises_auth_failed(make_endpoint: MakeEndpoint, policy: NetworkPolicy) -> None:
    with SmtpPeer(users={USER: "other"}) as peer:
        smtp = session(peer.port, make_endpoint, policy, auth=True)
        with pytest.raises(errors.AuthFailed, match="rejected the credentials"):
            smtp.open()
    assert smtp.handshake is not None
    assert not smtp.handshake.ok


def test_open_raises_reply_error_on_421_greeting(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with (
        ScriptedPeer(Script(greeting=b"421 4.3.2 busy\r\n")) as peer,
        pytest.raises(errors.ReplyError) as caught,
    ):
        session(peer.port, make_endpoint, policy).open()
    assert caught.value.code == 421


def test_connection_lost_before_data_raises(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with ScriptedPeer(Script(replies=((b"MAIL", DROP),))) as peer:
        smtp = session(peer.port, make_endpoint, policy)
        smtp.open()
        with pytest.raises(errors.ConnectFailed):
            smtp.send(SENDER, ["a@example.test"], RAW)
    assert not smtp.is_open


def test_header_injection_in_addresses_is_refused(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer() as peer, session(peer.port, make_endpoint, policy) as smtp:
        with pytest.raises(errors.InvalidInput):
            smtp.send(SENDER, ["a@example.test\r\nRCPT TO:<evil@example.test>"], RAW)
        with pytest.raises(errors.InvalidInput):
            smtp.send(SENDER, [], RAW)


def test_dot_stuffing_and_bare_lf(make_endpoint: MakeEndpoint, policy: NetworkPolicy) -> None:
    raw = b"Subject: dots\n\n.leading dot\n..two\nend\n"
    with SmtpPeer() as peer:
        with session(peer.port, make_endpoint, policy) as smtp:
            smtp.send(SENDER, ["a@example.test"], raw)
        (message,) = peer.messages
    assert message.raw == b"Subject: dots\r\n\r\n.leading dot\r\n..two\r\nend\r\n"


def test_utf8_addresses_use_smtputf8(make_endpoint: MakeEndpoint, policy: NetworkPolicy) -> None:
    with SmtpPeer() as peer:
        with session(peer.port, make_endpoint, policy) as smtp:
            outcome = smtp.send("zoë@example.test", ["jürgen@example.test"], RAW)
        (message,) = peer.messages
    assert outcome.accepted == ("jürgen@example.test",)
    assert message.mail_from == "zoë@example.test"
