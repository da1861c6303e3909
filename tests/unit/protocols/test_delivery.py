from __future__ import annotations

import pytest

from postroom.domain.delivery import (
    RecipientResult,
    Reply,
    ReplyClass,
    classify_reply,
    parse_enhanced_status,
)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        (250, ReplyClass.SUCCESS),
        (251, ReplyClass.SUCCESS),
        (421, ReplyClass.TRANSIENT),
        (451, ReplyClass.TRANSIENT),
        (452, ReplyClass.TRANSIENT),
        (354, ReplyClass.TRANSIENT),
        (550, ReplyClass.PERMANENT),
        (554, ReplyClass.PERMANENT),
    ],
)
def test_classify_reply(code: int, expected: ReplyClass) -> None:
    assert classify_reply(code) is expected


@pytest.mark.parametrize("code", [-1, 0, 99, 600])
def test_classify_reply_refuses_non_codes(code: int) -> None:
    with pytest.raises(ValueError, match="not an SMTP reply code"):
        classify_reply(code)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("5.1.1 <x@example.com>: Recipient address rejected", "5.1.1"),
        ("4.7.0 Try again later", "4.7.0"),
        ("2.0.0 Ok: queued as 4F1", "2.0.0"),
        ("5.7.123 policy", "5.7.123"),
        ("Requested action not taken", None),
        ("3.1.1 not a valid class", None),
        ("5.1 too short", None),
        ("5.1.1234 detail too long", None),
        ("", None),
    ],
)
def test_parse_enhanced_status(text: str, expected: str | None) -> None:
    assert parse_enhanced_status(text) == expected


def test_recipient_result_from_reply() -> None:
    result = RecipientResult.from_reply("a@example.com", 550, "5.1.1 no such user", "rcpt")
    assert result.enhanced_status == "5.1.1"
    assert result.reply_class is ReplyClass.PERMANENT
    assert Reply(451, "4.3.0 later").enhanced_status == "4.3.0"
