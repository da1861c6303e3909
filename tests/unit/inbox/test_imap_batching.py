"""Size-aware batching of IMAP fetches: the size listing parser and the batch planner."""

from __future__ import annotations

from postroom.protocols.imapfetch import parse_sizes, size_batches


def test_parse_sizes_reads_uid_and_size_in_any_order_and_skips_other_responses() -> None:
    lines = [
        b"1 (UID 40 RFC822.SIZE 3120)",
        b"2 (RFC822.SIZE 77 UID 41)",
        b"3 (FLAGS (\\Seen))",  # unsolicited flag change (RFC 9051 section 7.5.2)
        None,
        b"4 (UID 39 RFC822.SIZE 5)",
    ]
    assert parse_sizes(lines) == [(39, 5), (40, 3120), (41, 77)]


def test_size_batches_cap_count_and_bytes_and_isolate_big_messages() -> None:
    sizes = [(1, 10), (2, 10), (3, 10), (4, 100), (5, 10), (6, 10)]
    assert list(size_batches(sizes, 2, 50)) == [[1, 2], [3], [4], [5, 6]]
    assert list(size_batches(sizes, 10, 1000)) == [[1, 2, 3, 4, 5, 6]]
    assert list(size_batches([], 10, 10)) == []
