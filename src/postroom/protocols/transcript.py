"""The protocol conversation, line by line, with secrets removed **when captured**.

Redaction happens before anything is stored, so no later code path (log, API, UI) can leak
what was never kept. A redactor per protocol follows just enough of the dialogue to know when
the client is sending credentials:

- SMTP (RFC 4954): `AUTH <mech> <initial-response>` and every client line while the server
  answers 334 continuations; the message itself after 354 is summarised, not kept.
- IMAP (RFC 9051 §6.2): `LOGIN user password`, `AUTHENTICATE` continuations, and literals.
- POP3 (RFC 1939, RFC 5034): `PASS`, `APOP` digests, `AUTH` continuations.

The whole transcript is capped (default 256 KiB, then one 'truncated' marker) and so is each
line, because hostile servers send megabyte lines and endless replies.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from postroom.domain.checks import TranscriptEntry

REDACTED = "***"
MAX_BYTES = 256 * 1024
MAX_LINE = 2000


class _Redactor:
    """Default: nothing is secret."""

    def client(self, line: str) -> str:
        return line

    def client_chunk(self, data: bytes) -> str | None:
        """A summary for a whole chunk that is not a command (message data, a literal)."""
        return None

    def server(self, line: str) -> None:
        return None


class SmtpRedactor(_Redactor):
    def __init__(self) -> None:
        self._in_auth = False
        self._expect_data = False

    def client(self, line: str) -> str:
        if self._in_auth:
            return REDACTED
        verb, _, rest = line.partition(" ")
        if verb.upper() == "AUTH":
            self._in_auth = True
            mechanism, _, initial = rest.partition(" ")
            return f"{verb} {mechanism} {REDACTED}" if initial else line
        return line

    def client_chunk(self, data: bytes) -> str | None:
        if self._expect_data:
            self._expect_data = False
            return f"[message data: {len(data)} bytes]"
        return None

    def server(self, line: str) -> None:
        code = line[:3]
        if self._in_auth and code != "334":
            self._in_auth = False
        if line.startswith("354"):
            self._expect_data = True


# IMAP: tag, command, and the first argument as an atom or a quoted string.
_IMAP_COMMAND = re.compile(r'^(\S+) +(UID +)?(\S+)(?: +("(?:[^"\\]|\\.)*"|\S+))?', re.IGNORECASE)
_LITERAL = re.compile(r"\{(\d+)\+?\}$")


class ImapRedactor(_Redactor):
    def __init__(self) -> None:
        self._auth_tag: str | None = None
        self._secret_literal = False
        self._literal_pending = False

    def client(self, line: str) -> str:
        if self._auth_tag is not None:
            return REDACTED
        match = _IMAP_COMMAND.match(line)
        if match is None:
            return line
        tag, _uid, command, first = match.groups()
        command = command.upper()
        if command == "LOGIN":
            self._secret_literal = bool(_LITERAL.search(line))
            self._literal_pending = self._secret_literal
            if first is None or _LITERAL.fullmatch(first):
                return f"{tag} LOGIN {REDACTED}"
            return f"{tag} LOGIN {first} {REDACTED}"
        if command == "AUTHENTICATE":
            self._auth_tag = tag
            # SASL-IR (RFC 4959) puts the initial response on the command line itself.
            initial = f" {REDACTED}" if len(line.split()) > 3 else ""
            return f"{tag} AUTHENTICATE {first or ''}{initial}"
        self._literal_pending = bool(_LITERAL.search(line))
        return line

    def client_chunk(self, data: bytes) -> str | None:
        if not self._literal_pending or data.endswith(b"\r\n"):
            return None
        # A literal is sent on its own, without a CRLF (imaplib sends the CRLF separately).
        self._literal_pending = False
        if self._secret_literal:
            return REDACTED
        return f"[literal: {len(data)} bytes]"

    def server(self, line: str) -> None:
        if self._auth_tag is not None and line.startswith(f"{self._auth_tag} "):
            self._auth_tag = None


class Pop3Redactor(_Redactor):
    def __init__(self) -> None:
        self._in_auth = False

    def client(self, line: str) -> str:
        if self._in_auth:
            return REDACTED
        verb, _, rest = line.partition(" ")
        upper = verb.upper()
        if upper == "PASS":
            return f"{verb} {REDACTED}"
        if upper == "APOP":
            return f"{verb} {rest.partition(' ')[0]} {REDACTED}"
        if upper == "AUTH" and rest:
            self._in_auth = True
            mechanism, _, initial = rest.partition(" ")
            return f"{verb} {mechanism} {REDACTED}" if initial else line
        return line

    def server(self, line: str) -> None:
        if self._in_auth and line.startswith(("+OK", "-ERR")):
            self._in_auth = False


_REDACTORS: dict[str, Callable[[], _Redactor]] = {
    "smtp": SmtpRedactor,
    "imap": ImapRedactor,
    "pop3": Pop3Redactor,
}


class Transcript:
    """The conversation of one probe or session. Not thread-safe: one per connection."""

    def __init__(
        self,
        protocol: str,
        *,
        max_bytes: int = MAX_BYTES,
        max_line: int = MAX_LINE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redactor = _REDACTORS.get(protocol, _Redactor)()
        self._max_bytes = max_bytes
        self._max_line = max_line
        self._clock = clock
        self._start = clock()
        self._size = 0
        self._truncated = False
        self._entries: list[TranscriptEntry] = []

    @property
    def entries(self) -> tuple[TranscriptEntry, ...]:
        return tuple(self._entries)

    def to_dicts(self) -> list[dict[str, object]]:
        return [{"direction": e.direction, "ms": e.ms, "text": e.text} for e in self._entries]

    def client(self, data: bytes) -> None:
        """Record bytes the client sent (one or more lines, or a data chunk)."""
        if not data.strip(b"\r\n"):
            return  # a bare CRLF, e.g. the one imaplib sends after a literal
        summary = self._redactor.client_chunk(data)
        if summary is not None:
            self._add("client", summary)
            return
        for line in _lines(data):
            self._add("client", self._redactor.client(line))

    def server(self, data: bytes) -> None:
        """Record one line (or chunk) the server sent."""
        for line in _lines(data):
            self._redactor.server(line)
            self._add("server", line)

    def info(self, text: str) -> None:
        self._add("info", text)

    def connected(self, text: str) -> None:
        """A new connection starts: note it, and forget the protocol state of the last one
        (an AUTH or a 354 left open when that connection was dropped)."""
        self._redactor = type(self._redactor)()
        self._add("info", text)

    def _add(self, direction: str, text: str) -> None:
        if self._truncated:
            return
        if len(text) > self._max_line:
            text = f"{text[: self._max_line]}… [{len(text)} characters, cut]"
        self._size += len(text)
        ms = int((self._clock() - self._start) * 1000)
        if self._size > self._max_bytes:
            self._truncated = True
            text, direction = f"[transcript truncated after {self._max_bytes} bytes]", "info"
        self._entries.append(TranscriptEntry(direction, ms, text))


def _lines(data: bytes) -> list[str]:
    text = data.decode("utf-8", errors="replace")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines] or [""]
