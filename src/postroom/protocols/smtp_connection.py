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
from typing import IO, TYPE_CHECKING

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


class _ReplyReader:
    """smtplib's reply file: every read bounded by the deadline, recorded, and size-checked."""

    def __init__(self, raw: IO[bytes], sock: socket.socket, wire: Wire) -> None:
        self._raw, self._sock, self._wire = raw, sock, wire
        self.lines = 0

    def readline(self, size: int = -1) -> bytes:
        self._wire.arm(self._sock)
        line = self._raw.readline(size)
        if line:
            self._wire.received(line)
        if 0 < size <= len(line) and not line.endswith(b"\n"):
            raise errors.ProtocolError(f"the server sent a line longer than {size - 1} bytes")
        self.lines += 1
        if self.lines > MAX_REPLY_LINES:
            raise errors.ProtocolError(f"the server sent more than {MAX_REPLY_LINES} reply lines")
        return line

    def close(self) -> None:
        self._raw.close()


class WireSMTP(smtplib.SMTP):
    """smtplib over a socket we connected (policy-checked IP) and a recording reader."""

    def __init__(self, wire: Wire, sock: socket.socket, local_hostname: str) -> None:
        self._wire = wire
        self._connected = sock
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

    def getreply(self) -> tuple[int, bytes]:
        if self.file is None and self.sock is not None:
            self.file = _ReplyReader(self.sock.makefile("rb"), self.sock, self._wire)
        if isinstance(self.file, _ReplyReader):
            self.file.lines = 0
        return super().getreply()


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
