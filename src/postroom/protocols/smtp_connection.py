"""The SMTP connection: smtplib over a socket we connected, and the staged handshake.

    connect → TLS (implicit, or STARTTLS; never silently plaintext) → greeting → EHLO → AUTH

smtplib does the talking, with an explicit SSLContext; every byte passes through a `Wire`
(transcript + deadline), and every reply is bounded in lines and line length. The probe, the
test message and the delivery session (protocols/smtp.py) all open through `handshake`.
"""

from __future__ import annotations

import smtplib
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING

from postroom import errors
from postroom.domain.accounts import Security
from postroom.domain.checks import ErrorClass, Failure, Field
from postroom.protocols import tls
from postroom.protocols.endpoints import Endpoint, NetworkPolicy
from postroom.protocols.probing import Probe, ProbeFailed
from postroom.protocols.wire import Wire, tls_context, tls_established

if TYPE_CHECKING:
    from typing_extensions import Buffer

# One reply longer than this is a hostile or broken server, not a long EHLO list.
MAX_REPLY_LINES = 1000
# smtplib's limit for one reply line, line end included.
MAX_LINE = 8192
_RECV_SIZE = 65536


class _ReplyReader:
    """The server's replies, read from the socket in whole chunks and split into lines.

    A pipelined write is answered by several replies that arrive together; one recv() takes
    them all, where a buffered file's readline() cost several calls per line. Every recv is
    bounded by the deadline, every line is recorded and checked against the length limit.
    """

    def __init__(self, sock: socket.socket, wire: Wire) -> None:
        self.sock, self._wire = sock, wire
        self._data = b""
        self._pos = 0

    @property
    def pending(self) -> bool:
        """Bytes were received that no reply has taken yet."""
        return self._pos < len(self._data)

    def has_line(self) -> bool:
        """A whole line can be read without waiting for the network (TLS: also bytes that
        the TLS layer has already decrypted)."""
        if self._data.find(b"\n", self._pos) >= 0:
            return True
        pending = getattr(self.sock, "pending", None)  # ssl.SSLSocket
        return pending is not None and pending() > 0

    def line(self) -> bytes:
        """The next line with its line end; at the end of the stream what is left (maybe a
        line without its end), then b"". OSError from the socket or the deadline."""
        while (end := self._data.find(b"\n", self._pos)) < 0:
            if len(self._data) - self._pos >= MAX_LINE:
                raise errors.ProtocolError(f"the server sent a line longer than {MAX_LINE} bytes")
            self._wire.arm(self.sock)
            chunk = self.sock.recv(_RECV_SIZE)
            if not chunk:
                line, self._data, self._pos = self._data[self._pos :], b"", 0
                if line:
                    self._wire.received(line)
                return line
            self._data, self._pos = self._data[self._pos :] + chunk, 0
        if end - self._pos >= MAX_LINE:
            raise errors.ProtocolError(f"the server sent a line longer than {MAX_LINE} bytes")
        line, self._pos = self._data[self._pos : end + 1], end + 1
        self._wire.received(line)
        return line


class WireSMTP(smtplib.SMTP):
    """smtplib over a socket we connected (policy-checked IP), with our own reply reader."""

    def __init__(self, wire: Wire, sock: socket.socket, local_hostname: str) -> None:
        self._wire = wire
        self._connected = sock
        self._replies: _ReplyReader | None = None
        self.writes = 0  # sendall calls: what pipelining saves (SmtpSession.writes)
        super().__init__(local_hostname=local_hostname, timeout=wire.endpoint.timeout_s)
        # starttls() sends SNI and checks the certificate against _host; connect() does not set
        # it (only the constructor does), and we never let the constructor connect.
        self._host = wire.endpoint.host

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return self._connected

    def send(self, s: Buffer | str) -> None:
        self.send_parts([s.encode(self.command_encoding) if isinstance(s, str) else bytes(s)])

    def send_parts(self, parts: Sequence[bytes]) -> None:
        """Write `parts` in ONE sendall, but record each on its own: message data followed by
        the next envelope (RFC 2920 across messages) is then summarised as data while the
        commands after it stay readable in the transcript (see transcript.SmtpRedactor)."""
        if self.sock is not None:
            self._wire.arm(self.sock)
            for part in parts:
                self._wire.sent(part)
            self.writes += 1
        super().send(b"".join(parts))

    def waiting_on(self) -> socket.socket | None:
        """The socket to wait on before a reply line can be read; None when one is here."""
        if self.sock is None or self._reader().has_line():
            return None
        return self.sock

    def getreply(self) -> tuple[int, bytes]:
        """smtplib's contract: (code, text with lines joined by "\n"), code -1 when the
        reply does not start with one; SMTPServerDisconnected (connection closed) when the
        peer hangs up or a read fails, the read's error as its cause."""
        if self.sock is None:
            raise smtplib.SMTPServerDisconnected("please run connect() first")
        replies = self._reader()
        lines: list[bytes] = []
        for _ in range(MAX_REPLY_LINES):
            try:
                line = replies.line()
            except OSError as exc:
                self.close()
                raise smtplib.SMTPServerDisconnected(
                    f"Connection unexpectedly closed: {exc}"
                ) from exc
            if not line:
                self.close()
                raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
            lines.append(line[4:].strip(b" \t\r\n"))
            try:
                code = int(line[:3])
            except ValueError:
                return -1, b"\n".join(lines)
            if line[3:4] != b"-":
                return code, b"\n".join(lines)
        raise errors.ProtocolError(f"the server sent more than {MAX_REPLY_LINES} reply lines")

    def _reader(self) -> _ReplyReader:
        """The reader of the current socket: a new one after connect() and STARTTLS."""
        assert self.sock is not None
        if self._replies is None or self._replies.sock is not self.sock:
            if self._replies is not None and self._replies.pending:
                # Sent in plaintext behind the 220 to STARTTLS: it must not pass for a reply
                # protected by TLS (command injection, CVE-2011-0411).
                self.close()
                raise errors.ProtocolError("the server sent more than its reply to STARTTLS")
            self._replies = _ReplyReader(self.sock, self._wire)
        return self._replies

    def close(self) -> None:
        self._replies = None
        super().close()


def reply_text(raw: bytes | str) -> str:
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw


def _address_literal(sock: socket.socket) -> str:
    """Our address as an EHLO argument (RFC 5321 §4.1.3) — no reverse DNS lookup needed."""
    ip = sock.getsockname()[0]
    return f"[IPv6:{ip}]" if ":" in ip else f"[{ip}]"


def _ehlo(smtp: WireSMTP) -> str:
    code, text = smtp.ehlo()
    if code != 250:
        code, text = smtp.helo()
        if code != 250:
            raise errors.ReplyError(code=code, text=reply_text(text))
        return "the server does not speak ESMTP (HELO accepted)"
    features = [f"{k.upper()} {v.strip()}".strip() for k, v in smtp.esmtp_features.items()]
    return "extensions: " + (", ".join(features) or "none")


def _auth(smtp: WireSMTP, endpoint: Endpoint, encrypted: bool) -> str:
    if not smtp.has_extn("auth"):
        raise ProbeFailed(
            Failure(
                ErrorClass.AUTH_UNSUPPORTED,
                "the server does not offer authentication (no AUTH in EHLO)",
                "the server may offer AUTH only after STARTTLS, or needs no user name",
                Field.SECURITY if not encrypted else Field.USERNAME,
            )
        )
    offered = smtp.esmtp_features["auth"].upper().split()
    # Over plaintext prefer CRAM-MD5, which does not reveal the password (RFC 2195).
    preference = ("PLAIN", "LOGIN", "CRAM-MD5") if encrypted else ("CRAM-MD5", "PLAIN", "LOGIN")
    mechanism = next((m for m in preference if m in offered), None)
    if mechanism is None:
        raise ProbeFailed(
            Failure(
                ErrorClass.AUTH_UNSUPPORTED,
                f"the server offers AUTH {' '.join(offered)}, none of PLAIN, LOGIN, CRAM-MD5",
                "ask the provider for PLAIN or LOGIN over TLS",
                Field.SECURITY,
            )
        )
    smtp.user, smtp.password = endpoint.username, endpoint.password_value
    handler = getattr(smtp, "auth_" + mechanism.lower().replace("-", "_"))
    smtp.auth(mechanism, handler)
    return f"authenticated as {endpoint.username} with {mechanism} (offered: {' '.join(offered)})"


def handshake(probe: Probe, policy: NetworkPolicy) -> WireSMTP:
    """connect → TLS → greeting → EHLO → STARTTLS → EHLO → AUTH, one step each."""
    endpoint, wire = probe.endpoint, probe.wire
    sock = probe.connect(policy)
    smtp: WireSMTP | None = None
    try:
        smtp = WireSMTP(wire, sock, endpoint.helo_name or _address_literal(sock))
        with probe.step("greeting") as note:
            code, greeting = smtp.connect(endpoint.host, endpoint.port)
            if code != 220:
                raise errors.ReplyError(code=code, text=reply_text(greeting))
            note.message = f"{code} {reply_text(greeting)}"
        with probe.step("ehlo") as note:
            note.message = _ehlo(smtp)
        if endpoint.security is Security.STARTTLS:
            with probe.step("starttls") as note:
                if not smtp.has_extn("starttls"):
                    raise ProbeFailed(
                        Failure(
                            ErrorClass.STARTTLS_UNAVAILABLE,
                            "the server does not offer STARTTLS",
                            f"the server on port {endpoint.port} cannot encrypt with STARTTLS; "
                            "choose SSL (usually port 465) or ask the provider",
                            Field.SECURITY,
                        )
                    )
                smtp.starttls(context=tls_context(endpoint))
                assert smtp.sock is not None  # starttls() raises when the link is gone
                probe.record_tls(tls_established(smtp.sock, wire))
                note.message = tls.summary(probe.tls) if probe.tls else ""
            with probe.step("ehlo") as note:
                note.message = "after STARTTLS: " + _ehlo(smtp)
        if endpoint.username:
            with probe.step("auth") as note:
                note.message = _auth(smtp, endpoint, endpoint.security is not Security.NONE)
        else:
            probe.skip("auth", "no user name configured")
        return smtp
    except BaseException:
        (smtp if smtp is not None else sock).close()
        raise
