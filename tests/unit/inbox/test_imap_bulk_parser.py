"""The narrow bulk FETCH parser: real Dovecot 2.3 bytes (captured as imaplib hands them over)
parse exactly as IMAPClient's general parser parses them; any other shape is refused (None) so
the fetch falls back to the general parser."""

from __future__ import annotations

import imaplib
import io
from typing import Any

import pytest
from imapclient.datetime_util import parse_to_datetime
from imapclient.response_parser import parse_fetch_response

from postroom.protocols.imapfetch import parse_bulk_fetch, parse_internaldate, read_fetch

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


def _stream(data: bytes) -> tuple[Any, Any]:
    buffer = io.BytesIO(data)
    return buffer.readline, buffer.read


def test_read_fetch_gives_imaplib_shaped_data_and_skips_other_responses() -> None:
    wire = (
        b"* 1 FETCH (UID 1 FLAGS (\\Seen \\Recent $Label1) "
        b'INTERNALDATE "01-Dec-2026 20:33:00 +0000" RFC822.SIZE %d BODY[] {%d}\r\n'
        % (len(FIRST), len(FIRST))
        + FIRST
        + b")\r\n* 3 EXISTS\r\n* 9 FETCH (FLAGS (\\Deleted))\r\n"
        b"* OK [ALERT] {5}\r\nhello\r\n"  # an untagged response with a literal: read, dropped
        b"* 2 FETCH (UID 7 FLAGS () "
        b'INTERNALDATE " 1-Dec-2026 21:33:00 +0100" RFC822.SIZE %d BODY[] {%d}\r\n'
        % (len(SECOND), len(SECOND))
        + SECOND
        + b")\r\npf1 OK Fetch completed (0.001 + 0.000 secs).\r\npf2 OK next\r\n"
    )
    data, status = read_fetch(*_stream(wire), b"pf1")
    assert status == b"OK Fetch completed (0.001 + 0.000 secs)."
    assert data == [*DOVECOT[:2], b"9 (FLAGS (\\Deleted))", *DOVECOT[2:]]
    assert parse_bulk_fetch(data) is None  # the flag update is not in the narrow shape …
    assert parse_fetch_response(data, False, True)[7][b"BODY[]"] == SECOND  # … the general is


@pytest.mark.parametrize("wire", [b"", b"* 1 FETCH (UID 1)\r\n", b"* 1 FETCH (UID 1)"])
def test_read_fetch_ends_of_stream_are_aborts(wire: bytes) -> None:
    with pytest.raises(imaplib.IMAP4.abort):
        read_fetch(*_stream(wire), b"pf1")
