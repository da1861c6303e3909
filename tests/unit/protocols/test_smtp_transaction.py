"""The transaction's bytes and the meaning of its replies, the same for lock-step and pipelined."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from postroom import errors
from postroom.domain.delivery import Reply
from postroom.protocols.smtp_transaction import (
    Action,
    EnvelopeReplies,
    Mail,
    check,
    delivered,
    dot_stuffed,
    judge,
    prepare,
)

OK, GO = Reply(250, "2.1.0 ok"), Reply(354, "go ahead")
TO = ("a@example.test", "b@example.test")


def test_prepare_builds_the_commands_and_options() -> None:
    mail = Mail("zoë@example.test", ("jürgen@example.test",), "Subject: ü\r\n\r\n.x".encode())
    tx = prepare(mail, {"size", "8bitmime", "smtputf8", "pipelining"})
    assert tx.payload == "Subject: ü\r\n\r\n..x\r\n.\r\n".encode()
    assert tx.commands == (
        f"mail FROM:<zoë@example.test> SIZE={len(tx.payload)} BODY=8BITMIME SMTPUTF8\r\n".encode(),
        "rcpt TO:<jürgen@example.test>\r\n".encode(),
        b"data\r\n",
    )
    assert prepare(Mail("", TO, b"x"), set()).commands[0] == b"mail FROM:<>\r\n"


def test_utf8_addresses_need_smtputf8_and_line_breaks_are_refused() -> None:
    with pytest.raises(errors.InvalidInput):
        prepare(Mail("s@example.test", ("jürgen@example.test",), b"x"), {"8bitmime"})
    for bad in (Mail("s@example.test", (), b"x"), Mail("s\r\n@example.test", TO, b"x")):
        with pytest.raises(errors.InvalidInput):
            check(bad)


@pytest.mark.parametrize(
    ("raw", "stuffed"),
    [
        (b".a\nb\n", b"..a\r\nb\r\n.\r\n"),
        (b"a\r\n.b", b"a\r\n..b\r\n.\r\n"),
        (b"", b"\r\n.\r\n"),
    ],
)
def test_dot_stuffed(raw: bytes, stuffed: bytes) -> None:
    assert dot_stuffed(raw) == stuffed


@given(st.lists(st.sampled_from([b"a", b".", b"\r", b"\n", b"\r\n", b"\r\n."])).map(b"".join))
def test_dot_stuffed_fast_path_means_the_same(raw: bytes) -> None:
    # The reference: every line end made CRLF, every line starting with "." gets another.
    lines = re.sub(rb"\r?\n", b"\n", raw).split(b"\n")
    body = b"\r\n".join(b"." + line if line.startswith(b".") else line for line in lines)
    expected = body + (b"" if body.endswith(b"\r\n") else b"\r\n") + b".\r\n"
    assert dot_stuffed(raw) == expected


def test_partial_refusal_sends_the_body_to_the_accepted_one() -> None:
    verdict = judge(TO, EnvelopeReplies(OK, (OK, Reply(550, "5.1.1 no such user")), GO))
    assert verdict.action is Action.SEND_BODY
    outcome = delivered(verdict, Reply(250, "2.0.0 queued"))
    assert [(r.address, r.stage, r.code) for r in outcome.recipients] == [
        ("a@example.test", "data", 250),
        ("b@example.test", "rcpt", 550),
    ]
    assert outcome.accepted == ("a@example.test",)


def test_a_refused_mail_refuses_everyone_whatever_the_rcpt_replies_said() -> None:
    refused = Reply(550, "5.7.1 sender refused")
    pipelined = judge(TO, EnvelopeReplies(refused, (OK, OK), Reply(503, "need RCPT")))
    lock_step = judge(TO, EnvelopeReplies(refused))
    for verdict in (pipelined, lock_step):
        assert verdict.action is Action.RESET
        assert [(r.stage, r.code) for r in verdict.outcome.recipients] == [("mail", 550)] * 2
        assert verdict.outcome.data is None


def test_354_without_an_accepted_recipient_drops_the_connection() -> None:
    nobody = (Reply(550, "no"), Reply(452, "full"))
    assert judge(TO, EnvelopeReplies(OK, nobody, GO)).action is Action.DROP
    assert (
        judge(TO, EnvelopeReplies(OK, nobody, Reply(554, "no recipients"))).action is Action.RESET
    )
    assert judge(TO, EnvelopeReplies(OK, nobody)).action is Action.RESET  # lock-step: no DATA


def test_data_refused_is_the_accepted_recipients_result_and_421_closes() -> None:
    verdict = judge(TO, EnvelopeReplies(OK, (OK, OK), Reply(421, "4.3.2 closing")))
    assert verdict.action is Action.RESET
    assert verdict.closing
    assert verdict.outcome.data == Reply(421, "4.3.2 closing")
    assert [(r.stage, r.code) for r in verdict.outcome.recipients] == [("data", 421)] * 2
    assert not judge(TO, EnvelopeReplies(OK, (OK, OK), Reply(451, "later"))).closing
