"""Header sections read exactly as the stdlib's `compat32` parser reads them, without building an
`email.message.Message`.

Parsing a message's headers was the dearest step of an import: the feed parser's line
generators, then `Message.get_param` re-splitting the Content-Type value on every call. Here a
section is split in one pass into (name, value) fields, and the handful of accessors the parser
needs answer from a dict of first occurrences. Parameters of plain ASCII values without RFC 2231
names, backslashes or quoted semicolons (nearly all real mail) are read by a short path that
gives the stdlib's answer; any other value is handed to a real compat32 `Message`, so odd input
gets the stdlib's behaviour exactly (tests/unit/inbox/test_headers.py compares the two).
"""

from __future__ import annotations

import re
from email.message import Message
from email.utils import collapse_rfc2231_value, unquote

_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+")
# email.feedparser.headerRE: a field name and colon (RFC 5322 §3.6.8 ftext), a continuation, or
# an mbox "From " envelope line; the first line that is none of these ends the header section.
_HEADER_LINE = re.compile(r"From |[\041-\071\073-\176]*:|[\t ]")


class Headers:
    """One header section: its fields in order (names as written, values unfolded as compat32
    leaves them) and the accessors of `email.message.Message` that parsing uses, with the same
    results. Values are the raw strings (8-bit bytes as surrogate escapes)."""

    __slots__ = ("_fields", "_first", "_message", "_unixfrom")

    def __init__(self, fields: list[tuple[str, str]], unixfrom: str | None = None) -> None:
        self._fields = fields
        self._unixfrom = unixfrom
        self._message: Message | None = None
        first: dict[str, str] = {}
        for name, value in fields:
            first.setdefault(name.lower(), value)
        self._first = first

    def raw_items(self) -> list[tuple[str, str]]:
        return list(self._fields)

    def keys(self) -> list[str]:
        return [name for name, _ in self._fields]

    def get_unixfrom(self) -> str | None:
        return self._unixfrom

    def get(self, name: str, default: str = "") -> str:
        """The first field called `name` (any case), or `default`."""
        return self._first.get(name.lower(), default)

    def get_content_type(self) -> str:
        value = self._first.get("content-type")
        if value is None:
            return "text/plain"
        if not value.isascii():
            return self._stdlib().get_content_type()
        ctype = value.partition(";")[0].strip().lower()
        return ctype if ctype.count("/") == 1 else "text/plain"

    def get_content_maintype(self) -> str:
        return self.get_content_type().split("/")[0]

    def get_content_disposition(self) -> str | None:
        value = self._first.get("content-disposition")
        if value is None or not value.isascii():
            return None if value is None else self._stdlib().get_content_disposition()
        return value.partition(";")[0].strip().lower()

    def get_boundary(self) -> str | None:
        params = self._params("content-type")
        if params is None:
            return self._stdlib().get_boundary()
        found = params.get("boundary")
        return None if found is None else collapse_rfc2231_value(found).rstrip()

    def get_content_charset(self) -> str | None:
        params = self._params("content-type")
        if params is None:
            return self._stdlib().get_content_charset()
        found = params.get("charset")
        return None if found is None else found.lower()  # ASCII: the stdlib's check passes

    def get_filename(self) -> str | None:
        for header, name in (("content-disposition", "filename"), ("content-type", "name")):
            params = self._params(header)
            if params is None:
                return self._stdlib().get_filename()
            if name in params:
                return collapse_rfc2231_value(params[name]).strip()
        return None

    def _params(self, header: str) -> dict[str, str] | None:
        """The parameters of the first `header` field as `Message.get_param` reads them (names
        lower-cased, values unquoted, the first of a repeated name counts); {} without such a
        field; None when the value needs the stdlib's own reading (RFC 2231 names, backslash
        escapes, a quoted ";", 8-bit text)."""
        value = self._first.get(header)
        if value is None:
            return {}
        if not value.isascii() or "*" in value or "\\" in value:
            return None
        params: dict[str, str] = {}
        for piece in value.split(";"):
            if piece.count('"') % 2:
                return None  # a quoted ";": the stdlib joins pieces here
            name, eq, found = piece.partition("=")
            params.setdefault(name.strip().lower(), unquote(found.strip()) if eq else "")
        return params

    def _stdlib(self) -> Message:
        if self._message is None:
            message = Message()
            for name, value in self._fields:
                message.set_raw(name, value)
            self._message = message
        return self._message


def parse_headers(data: bytes) -> Headers:
    """A header section parsed exactly as `email.parser.BytesHeaderParser(policy=compat32)`
    does (same fields, values and envelope line; defects are not recorded).

    A section of well-formed fields with one kind of line end (nearly every one) is split on
    that line end; anything else (mixed line ends, an envelope line, a line that is no field,
    a field without a name, a continuation before the first field) is read line by line as
    the stdlib does."""
    text = data.decode("ascii", "surrogateescape")
    crs = text.count("\r")
    if crs == 0:
        eol = "\n"
    elif crs == text.count("\n") == text.count("\r\n"):
        eol = "\r\n"
    else:
        return _parse_lines(text)
    lines = text.split(eol)
    if lines[-1] == "":
        lines.pop()  # the section's last line end
    fields: list[tuple[str, str]] = []
    for line in lines:
        if line[:1] in (" ", "\t") and line:
            if not fields:
                return _parse_lines(text)
            name, value = fields[-1]
            fields[-1] = (name, value + eol + line)
            continue
        name, colon, value = line.partition(":")
        if not (colon and name and name.isascii() and name.isprintable()) or " " in name:
            return _parse_lines(text)  # "From " lines, no name, no colon, a blank line
        fields.append((name, value.lstrip(" \t")))
    return Headers([(n, v.rstrip("\r\n")) for n, v in fields])


def _parse_lines(text: str) -> Headers:
    fields: list[tuple[str, str]] = []
    unixfrom: str | None = None
    lines = []
    for line in _LINE.findall(text):
        if not _HEADER_LINE.match(line):
            break
        lines.append(line)
    value: list[str] = []
    for lineno, line in enumerate(lines):
        if line[0] in " \t":
            if value:  # a continuation before any field is dropped, as the stdlib does
                value.append(line)
            continue
        if value:
            fields.append(_field(value))
            value = []
        if line.startswith("From "):
            if lineno == 0:
                unixfrom = line.rstrip("\r\n")
                continue
            if lineno == len(lines) - 1:
                break  # the stdlib reads a last "From " line as the start of the body
            continue  # a misplaced envelope line is ignored
        if not line.startswith(":"):  # a field without a name is ignored
            value = [line]
    if value:
        fields.append(_field(value))
    return Headers(fields, unixfrom)


def _field(lines: list[str]) -> tuple[str, str]:
    """compat32's header_source_parse: name up to the colon, value unfolded as it stands."""
    name, value = lines[0].split(":", 1)
    if len(lines) == 1:
        return name, value.lstrip(" \t").rstrip("\r\n")
    return name, (value.lstrip(" \t") + "".join(lines[1:])).rstrip("\r\n")
