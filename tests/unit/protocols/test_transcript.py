"""Redaction happens at capture time; what is stored never holds a secret."""

from __future__ import annotations

import base64
import json

from postroom.protocols.transcript import REDACTED, Transcript

PASSWORD = "s3cr3t-Pa55"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def texts(transcript: Transcript, direction: str = "client") -> list[str]:
    return [e.text for e in transcript.entries if e.direction == direction]


def assert_no_secret(transcript: Transcript, *secrets: str) -> None:
    stored = json.dumps(transcript.to_dicts())
    for secret in secrets:
        assert secret not in stored


def test_smtp_auth_plain_initial_response() -> None:
    t = Transcript("smtp")
    token = b64(f"\0user\0{PASSWORD}")
    t.client(f"AUTH PLAIN {token}\r\n".encode())
    t.server(b"235 2.7.0 Authentication successful\r\n")
    t.client(b"MAIL FROM:<a@example.com>\r\n")
    assert texts(t) == [f"AUTH PLAIN {REDACTED}", "MAIL FROM:<a@example.com>"]
    assert_no_secret(t, token, PASSWORD)


def test_smtp_auth_login_continuations() -> None:
    t = Transcript("smtp")
    t.client(f"AUTH LOGIN {b64('user')}\r\n".encode())
    t.server(b"334 UGFzc3dvcmQ6\r\n")
    t.client(f"{b64(PASSWORD)}\r\n".encode())
    t.server(b"535 5.7.8 Authentication failed\r\n")
    t.client(b"QUIT\r\n")
    assert texts(t) == [f"AUTH LOGIN {REDACTED}", REDACTED, "QUIT"]
    assert texts(t, "server") == ["334 UGFzc3dvcmQ6", "535 5.7.8 Authentication failed"]
    assert_no_secret(t, b64(PASSWORD))


def test_smtp_cram_md5_response() -> None:
    t = Transcript("smtp")
    t.client(b"AUTH CRAM-MD5\r\n")
    t.server(b"334 PDQxOTI5NDIzNDEuMTI4Mjg0NzJAc291cmNlZm91ci5hbmRyZXcuY211LmVkdT4=\r\n")
    t.client(b"dGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n")
    t.server(b"235 ok\r\n")
    assert texts(t) == ["AUTH CRAM-MD5", REDACTED]


def test_smtp_message_data_is_summarised() -> None:
    t = Transcript("smtp")
    t.client(b"DATA\r\n")
    t.server(b"354 go ahead\r\n")
    t.client(b"Subject: private\r\n\r\nbody\r\n.\r\n")
    assert texts(t) == ["DATA", "[message data: 29 bytes]"]


def test_a_new_connection_forgets_a_354_left_open() -> None:
    # A connection dropped after 354 without data: the next connection's first command is a
    # command again, not "message data".
    t = Transcript("smtp")
    t.server(b"354 go ahead\r\n")
    t.connected("connected to 127.0.0.1 port 25")
    t.client(b"EHLO [127.0.0.1]\r\n")
    assert texts(t) == ["EHLO [127.0.0.1]"]


def test_imap_login_keeps_user_and_hides_password() -> None:
    t = Transcript("imap")
    t.client(f'A001 LOGIN alice "{PASSWORD}"\r\n'.encode())
    t.client(f'A002 LOGIN "bob smith" {PASSWORD}\r\n'.encode())
    assert texts(t) == [f"A001 LOGIN alice {REDACTED}", f'A002 LOGIN "bob smith" {REDACTED}']
    assert_no_secret(t, PASSWORD)


def test_imap_login_with_literal_password() -> None:
    t = Transcript("imap")
    t.client(b"A001 LOGIN alice {11}\r\n")
    t.server(b"+ go ahead\r\n")
    t.client(PASSWORD.encode())
    t.client(b"\r\n")
    assert_no_secret(t, PASSWORD)


def test_imap_authenticate_continuations() -> None:
    t = Transcript("imap")
    t.client(b"A003 AUTHENTICATE PLAIN\r\n")
    t.server(b"+ \r\n")
    t.client(f"{b64(chr(0) + 'alice' + chr(0) + PASSWORD)}\r\n".encode())
    t.server(b"A003 OK done\r\n")
    t.client(b"A004 SELECT INBOX\r\n")
    assert texts(t) == ["A003 AUTHENTICATE PLAIN", REDACTED, "A004 SELECT INBOX"]


def test_imap_append_literal_is_summarised() -> None:
    t = Transcript("imap")
    t.client(b"A005 APPEND INBOX {5}\r\n")
    t.client(b"hello")
    assert texts(t) == ["A005 APPEND INBOX {5}", "[literal: 5 bytes]"]


def test_pop3_pass_and_apop() -> None:
    t = Transcript("pop3")
    t.client(b"USER alice\r\n")
    t.client(f"PASS {PASSWORD}\r\n".encode())
    t.client(b"APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n")
    assert texts(t) == ["USER alice", f"PASS {REDACTED}", f"APOP alice {REDACTED}"]
    assert_no_secret(t, PASSWORD, "c4c9334bac560ecc979e58001b3e22fb")


def test_size_cap_adds_one_marker() -> None:
    t = Transcript("smtp", max_bytes=1000)
    for _ in range(100):
        t.server(b"250-" + b"x" * 50 + b"\r\n")
    assert sum(len(e.text) for e in t.entries[:-1]) <= 1000
    assert t.entries[-1].direction == "info"
    assert "truncated" in t.entries[-1].text
    assert sum("truncated" in e.text for e in t.entries) == 1


def test_long_lines_are_cut() -> None:
    t = Transcript("smtp", max_line=100)
    t.server(b"220 " + b"x" * 1_100_000 + b"\r\n")
    (entry,) = t.entries
    assert len(entry.text) < 200
    assert "cut" in entry.text


def test_entries_have_direction_offset_and_text() -> None:
    clock = iter([0.0, 0.25, 0.5]).__next__
    t = Transcript("smtp", clock=clock)
    t.server(b"220 hi\r\n")
    t.info("TLS established")
    assert t.to_dicts() == [
        {"direction": "server", "ms": 250, "text": "220 hi"},
        {"direction": "info", "ms": 500, "text": "TLS established"},
    ]
