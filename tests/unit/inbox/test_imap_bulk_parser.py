"""The narrow bulk FETCH parser: real Dovecot 2.3 bytes (captured as imaplib hands them over)
parse exactly as IMAPClient's general parser parses them; any other shape is refused (None) so
the fetch falls back to the general parser."""

from __future__ import annotations

from typing import Any

import pytest
from imapclient.datetime_util import parse_to_datetime
from imapclient.response_parser import parse_fetch_response

from postroom.protocols.imapfetch import parse_bulk_fetch, parse_internaldate

FIRST = (
    b"Return-Path: <bench@example.org>\r\nDelivered-To: u@postroom.test\r\n"
    b"Subject: a\r\n\r\nhello\r\n"
)
SECOND = b"Subject: caf\xc3\xa9 \xff\r\n\r\nLine 3 (with parentheses) {12}\r\n)\r\n"
DOVECOT = [
    (
        b'1 (UID 1 FLAGS (\\Seen \\Recent $Label1) INTERNALDATE "01-Dec-2026 20:33:00 +0000" '
        b"RFC822.SIZE %d BODY[] {%d}" % (len(FIRST), len(FIRST)),
        FIRST,
    ),
    b")",
    (
        b'2 (UID 7 FLAGS () INTERNALDATE " 1-Dec-2026 21:33:00 +0100" '
        b"RFC822.SIZE %d BODY[] {%d}" % (len(SECOND), len(SECOND)),
        SECOND,
    ),
    b")",
]


def general(lines: list[Any]) -> dict[int, dict[bytes, Any]]:
    parsed = parse_fetch_response(lines, False, True)
    return {uid: {k: v for k, v in item.items() if k != b"SEQ"} for uid, item in parsed.items()}


def test_dovecot_bytes_parse_as_the_general_parser_parses_them() -> None:
    narrow = parse_bulk_fetch(DOVECOT)
    assert narrow == general(DOVECOT)
    assert narrow is not None
    assert narrow[1][b"FLAGS"] == (b"\\Seen", b"\\Recent", b"$Label1")
    assert narrow[7][b"BODY[]"] is SECOND  # the literal itself: exact bytes, no copy
    assert narrow[7][b"INTERNALDATE"].utcoffset().total_seconds() == 3600
    assert parse_bulk_fetch([]) == {}


def swap(index: int, head: bytes) -> list[Any]:
    lines = list(DOVECOT)
    lines[index] = (head, lines[index][1])
    return lines


@pytest.mark.parametrize(
    "lines",
    [
        [None],  # no FETCH response at all
        DOVECOT[:1],  # a literal without its closing line
        [*DOVECOT, b"3 (FLAGS (\\Seen))", b")"],  # unsolicited flag change (RFC 9051 7.5.2)
        [*DOVECOT[:3], b" FLAGS (\\Seen))"],  # items after the literal
        swap(0, DOVECOT[0][0].replace(b"UID 1 FLAGS", b"FLAGS")),  # no UID
        swap(
            0,
            b'1 (UID 1 RFC822.SIZE 5 FLAGS () INTERNALDATE "01-Dec-2026 20:33:00 +0000" '
            b"BODY[] {%d}" % len(FIRST),
        ),  # another item order
        swap(0, DOVECOT[0][0].replace(b"{%d}" % len(FIRST), b"{3}")),  # literal length
        swap(0, DOVECOT[0][0].replace(b"01-Dec-2026", b"99-Xyz-2026")),  # bad date
        swap(2, DOVECOT[2][0].replace(b"UID 7", b"UID 1")),  # the same UID twice
        [b'1 (UID 1 FLAGS () INTERNALDATE "01-Dec-2026 20:33:00 +0000" BODY[] NIL)', b")"],
    ],
)
def test_any_other_shape_falls_back(lines: list[Any]) -> None:
    assert parse_bulk_fetch(lines) is None


@pytest.mark.parametrize(
    "value",
    [
        b"01-Dec-2026 20:33:00 +0000",
        b" 1-Dec-2026 20:33:00 -0130",
        b"1-Jan-2027 00:00:59 +1400",
        b"29-Feb-2028 23:59:59 -1200",
        b"01-Dec-2026 20:33 +0000",  # no seconds: not RFC 9051, left to the lenient parser
        b"01-dec-2026 20:33:00 +0000",  # lower-case month: likewise
        b"01-Dec-2026 20.33.00 +0000",  # dotted time: likewise
    ],
)
def test_internaldate_reads_as_imapclient_reads_it(value: bytes) -> None:
    ours = parse_internaldate(value)
    theirs = parse_to_datetime(value, normalise=False)
    assert ours == theirs
    assert ours.utcoffset() == theirs.utcoffset()


@pytest.mark.parametrize("value", [b"31-Feb-2026 20:33:00 +0000", b"01-Dec-2026 25:00:00 +0000"])
def test_an_impossible_internaldate_is_an_error_as_in_imapclient(value: bytes) -> None:
    with pytest.raises(ValueError, match=r"out of range|must be in") as theirs:
        parse_to_datetime(value, normalise=False)
    with pytest.raises(ValueError, match=r"out of range|must be in") as ours:
        parse_internaldate(value)
    assert str(ours.value) == str(theirs.value)
