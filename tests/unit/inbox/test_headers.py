"""services/headers.Headers answers as a compat32 email.message.Message does, for any value."""

from __future__ import annotations

from email.message import Message

from hypothesis import given, settings
from hypothesis import strategies as st

from postroom.services.headers import Headers, parse_headers

TOKENS = [
    "text/plain", "multipart/mixed", "TEXT/HTML", "application/pdf", "attachment", "inline",
    "text", "/", ";", "; ", "=", '"', "'", " ", "\t", "\r\n ", "*", "*0", "*1*", "\\", "\\\"",
    "<", ">", '"<', '>"', "boundary", "BOUNDARY", "charset", "name", "filename", "utf-8", "us-ascii",
    "utf-8''caf%C3%A9", "''", "%", "a", "Zz", "x.pdf", "caf\udcc3\udca9", "\udcff",
]  # fmt: skip
# Values as parse_headers makes them: ASCII, and 8-bit bytes as surrogate escapes.
values = st.lists(st.sampled_from(TOKENS), max_size=12).map("".join)


def _both(fields: list[tuple[str, str]]) -> tuple[Headers, Message]:
    stdlib = Message()
    for name, value in fields:
        stdlib.set_raw(name, value)
    return Headers(fields), stdlib


def _same(ours: Headers, stdlib: Message) -> None:
    assert ours.get_content_type() == stdlib.get_content_type()
    assert ours.get_content_maintype() == stdlib.get_content_maintype()
    assert ours.get_content_disposition() == stdlib.get_content_disposition()
    assert ours.get_boundary() == stdlib.get_boundary()
    assert ours.get_content_charset() == stdlib.get_content_charset()
    assert ours.get_filename() == stdlib.get_filename()


@settings(max_examples=1500, deadline=None)
@given(
    ctype=st.none() | values,
    disposition=st.none() | values,
    second=st.none() | values,
)
def test_accessors_match_the_stdlib(
    ctype: str | None, disposition: str | None, second: str | None
) -> None:
    fields = []
    if ctype is not None:
        fields.append(("Content-Type", ctype))
    if disposition is not None:
        fields.append(("content-disposition", disposition))
    if second is not None:  # a repeated field: the first one counts, as in the stdlib
        fields.append(("CONTENT-TYPE", second))
    _same(*_both(fields))


def test_common_values() -> None:
    cases = [
        'multipart/alternative; boundary="b1"',
        "multipart/mixed; boundary=zz ",
        'text/plain; charset="UTF-8"; format=flowed',
        'application/pdf; name="f.pdf"',
        "text/plain; charset*=utf-8''latin-1",
        'multipart/mixed; boundary="a;b"',
        'multipart/mixed; boundary="<b>"',
        "multipart/mixed; boundary=<<b>>",
        'text/html; charset="caf\\"e"',
        "bogus",
        "",
    ]
    for value in cases:
        for disposition in (
            None,
            'attachment; filename="r.txt"',
            'attachment; filename="<r.txt>"',
            "inline",
            "attachment; filename*=utf-8''%C3%A9.txt",
        ):
            fields = [("Content-Type", value)]
            if disposition is not None:
                fields.append(("Content-Disposition", disposition))
            _same(*_both(fields))


def test_get_reads_the_first_field_in_any_case() -> None:
    headers = parse_headers(b"Subject: one\r\nsubject: two\r\nX-Folded: a\r\n b\r\n\r\n")
    assert headers.get("SUBJECT") == "one"
    assert headers.get("x-folded") == "a\r\n b"
    assert headers.get("missing") == ""
    assert headers.get("missing", "d") == "d"
    assert headers.keys() == ["Subject", "subject", "X-Folded"]
