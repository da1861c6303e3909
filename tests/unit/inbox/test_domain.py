"""Pure inbox rules: dedupe keys, cursor plans, import start, health and auto-disable."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postroom.domain.inbox import (
    Cursor,
    CursorAction,
    Health,
    before_start,
    dedupe_key,
    disable_reason,
    header_block,
    is_new_uid,
    normalise_message_id,
    plan_folder,
    raw_message_id,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("<abc@Example.COM>", "abc@example.com"),
        ("  <Abc@x.org> (comment)", "Abc@x.org"),
        ("abc@x.org", "abc@x.org"),
        ("\r\n <a@b>", "a@b"),
        ("", None),
        (None, None),
        ("<>", None),
        ("   ", None),
    ],
)
def test_normalise_message_id(value: str | None, expected: str | None) -> None:
    assert normalise_message_id(value) == expected


def test_dedupe_key_prefers_message_id_and_falls_back_to_hash() -> None:
    assert dedupe_key("<A@X.org>", "f" * 64) == dedupe_key("<A@x.ORG>", "0" * 64) == "mid:A@x.org"
    assert dedupe_key(None, "ab" * 32) == "sha256:" + "ab" * 32
    assert dedupe_key("<>", "ab" * 32) == "sha256:" + "ab" * 32


def test_raw_message_id_reads_folded_header_and_ignores_body() -> None:
    raw = b"Subject: x\r\nMessage-Id:\r\n <Folded@Host.Example>\r\n\r\nMessage-ID: <body@x>\r\n"
    assert raw_message_id(raw) == "Folded@host.example"
    assert raw_message_id(b"Subject: x\n\nMessage-ID: <body@x>\n") is None
    assert raw_message_id(b"message-id: <bare-lf@x>\nSubject: y\n\nz") == "bare-lf@x"


def test_header_block_stops_at_first_empty_line() -> None:
    assert header_block(b"A: 1\r\nB: 2\r\n\r\nbody\n\nmore") == b"A: 1\r\nB: 2"
    assert header_block(b"A: 1\n\nbody") == b"A: 1"
    assert header_block(b"no body at all") == b"no body at all"


def test_a_message_starting_with_an_empty_line_has_no_header_section() -> None:
    # As the MIME scanner reads it (the one header_end rule): what follows is all body.
    raw = b"\r\nMessage-ID: <in-the-body@x>\r\n\r\ntext"
    assert header_block(raw) == b""
    assert raw_message_id(raw) is None


def test_plan_folder_first_continue_resync() -> None:
    assert plan_folder([], 7).action is CursorAction.FIRST
    old = Cursor("INBOX", 7, 42, NOW)
    plan = plan_folder([old], 7)
    assert plan.action is CursorAction.CONTINUE
    assert plan.cursor == old
    plan = plan_folder([old], 8)
    assert plan.action is CursorAction.RESYNC
    assert plan.cursor == old
    # UIDVALIDITY coming back to an earlier value resumes that earlier cursor.
    assert plan_folder([Cursor("INBOX", 8, 3, NOW), old], 7).cursor == old


def test_uid_star_quirk_drops_uids_at_or_below_cursor() -> None:
    assert not is_new_uid(42, 42)
    assert not is_new_uid(41, 42)
    assert is_new_uid(43, 42)


def test_before_start() -> None:
    assert before_start(NOW - timedelta(seconds=1), NOW)
    assert not before_start(NOW, NOW)
    assert not before_start(None, NOW)
    assert not before_start(NOW - timedelta(days=9), None)


def test_health_counts_and_resets() -> None:
    h = Health().after_failure(NOW, auth=True).after_failure(NOW + timedelta(hours=1), auth=True)
    assert (h.consecutive_failures, h.consecutive_auth_failures, h.failing_since) == (2, 2, NOW)
    h = h.after_failure(NOW + timedelta(hours=2), auth=False)
    assert (h.consecutive_failures, h.consecutive_auth_failures) == (3, 0)
    assert h.after_success() == Health()


def test_disable_after_n_auth_failures() -> None:
    h = Health()
    for _ in range(2):
        h = h.after_failure(NOW, auth=True)
    assert disable_reason(h, NOW, max_auth_failures=3, max_failing_hours=24) is None
    h = h.after_failure(NOW, auth=True)
    reason = disable_reason(h, NOW, max_auth_failures=3, max_failing_hours=24)
    assert reason == "3 consecutive authentication failures"


def test_disable_after_t_hours_failing() -> None:
    h = Health().after_failure(NOW, auth=False)
    later = NOW + timedelta(hours=23)
    assert disable_reason(h, later, max_auth_failures=3, max_failing_hours=24) is None
    reason = disable_reason(h, NOW + timedelta(hours=25), max_auth_failures=3, max_failing_hours=24)
    assert reason is not None
    assert reason.startswith("failing for 25.0 hours")


def test_zero_limits_never_disable() -> None:
    h = Health(consecutive_failures=99, consecutive_auth_failures=99, failing_since=NOW)
    later = NOW + timedelta(days=30)
    assert disable_reason(h, later, max_auth_failures=0, max_failing_hours=0) is None
