"""POP3 over poplib: the staged probe and the mailbox used for fetching.

POP3 deletes are deferred: DELE only marks a message, and the server removes marked messages
when the session ends with QUIT (RFC 1939 §6, the UPDATE state). A session that ends any other
way — dropped connection, crash, timeout — deletes nothing. `Pop3Mailbox.quit()` commits.
"""

from __future__ import annotations

import poplib
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import TracebackType

from postroom import errors
from postroom.domain.accounts import Security
from postroom.domain.checks import CheckResult, ErrorClass, Failure, Field, ProbeContext, classify
from postroom.protocols import tls
from postroom.protocols.endpoints import Endpoint, NetworkPolicy
from postroom.protocols.probing import Probe, ProbeFailed, Session, as_error
from postroom.protocols.transcript import Transcript
from postroom.protocols.wire import (
    Deadline,
    Wire,
    tls_context,
    tls_established,
)

MAX_LINE = 2048  # poplib's limit; RFC 1939 §3 allows 512 octets per response line


class _WirePOP3(poplib.POP3):
    """poplib over our socket; `_putline`/`_getline` are poplib's single I/O funnel."""

    def __init__(self, wire: Wire, sock: socket.socket, host: str) -> None:
        self._wire = wire
        self._connected = sock
        super().__init__(host, wire.endpoint.port, timeout=wire.endpoint.timeout_s)

    def _create_socket(self, timeout: float | None) -> socket.socket:
        return self._connected

    # Same contract as poplib's own: send one line; return one line without its line end.
    def _putline(self, line: bytes) -> None:
        self._wire.arm(self.sock)
        self._wire.sent(line + b"\r\n")
        self.sock.sendall(line + b"\r\n")

    def _getline(self) -> tuple[bytes, int]:
        self._wire.arm(self.sock)
        line = self.file.readline(MAX_LINE + 1)
        if len(line) > MAX_LINE:
            raise errors.ProtocolError(f"the server sent a line longer than {MAX_LINE} bytes")
        if not line:
            raise poplib.error_proto("-ERR EOF")
        self._wire.received(line)
        octets = len(line)
        # Servers send any mix of CR and LF (poplib tolerates the same).
        if line.endswith(b"\r\n"):
            return line[:-2], octets
        if line.startswith(b"\r"):
            return line[1:-1], octets
        return line[:-1], octets


def _error_text(exc: poplib.error_proto) -> str:
    arg = exc.args[0] if exc.args else ""
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


def _is_eof(exc: poplib.error_proto) -> bool:
    return "EOF" in _error_text(exc)


def _handshake(probe: Probe, policy: NetworkPolicy) -> _WirePOP3:
    """connect → TLS → greeting → CAPA → STLS → USER/PASS."""
    endpoint, wire = probe.endpoint, probe.wire
    sock = probe.connect(policy)
    pop: _WirePOP3 | None = None
    try:
        with probe.step("greeting") as note:
            try:
                pop = _WirePOP3(wire, sock, endpoint.host)
            except poplib.error_proto as exc:
                if _is_eof(exc):
                    raise
                raise _bad_greeting(_error_text(exc), endpoint.port) from exc
            note.message = _text(pop.getwelcome())
        capabilities = _capa(probe, pop)
        if endpoint.security is Security.STARTTLS:
            with probe.step("stls") as note:
                _stls(pop, endpoint, capabilities)
                probe.record_tls(tls_established(pop.sock, wire))
                note.message = tls.summary(probe.tls) if probe.tls else ""
            capabilities = _capa(probe, pop)
        with probe.step("login") as note:
            _login(pop, endpoint, capabilities)
            note.message = f"logged in as {endpoint.username}"
        return pop
    except BaseException:
        (pop if pop is not None else sock).close()
        raise


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _bad_greeting(text: str, port: int) -> ProbeFailed:
    if text.startswith("-ERR"):
        return ProbeFailed(
            Failure(
                ErrorClass.UNEXPECTED_REPLY,
                f"the server refused the session: {text}",
                "the server is busy or does not accept connections from this address",
            )
        )
    return ProbeFailed(
        Failure(
            ErrorClass.PROTOCOL_ERROR,
            f"the greeting is not POP3: {text!r}",
            f"port {port} may belong to another service (POP3 is usually 995 or 110)",
            Field.PORT,
        )
    )


def _capa(probe: Probe, pop: _WirePOP3) -> dict[str, list[str]]:
    with probe.step("capa") as note:
        try:
            capabilities: dict[str, list[str]] = pop.capa()
        except poplib.error_proto as exc:
            if _is_eof(exc):
                raise
            note.warning, note.message = True, f"the server does not support CAPA: {exc}"
            return {}
        note.message = "capabilities: " + " ".join(capabilities)
        return capabilities


def _stls(pop: _WirePOP3, endpoint: Endpoint, capabilities: dict[str, list[str]]) -> None:
    if "STLS" not in capabilities:
        raise ProbeFailed(
            Failure(
                ErrorClass.STARTTLS_UNAVAILABLE,
                "the server does not offer STLS (STARTTLS for POP3)",
                f"the server on port {endpoint.port} cannot encrypt with STLS; "
                "choose SSL (usually port 995)",
                Field.SECURITY,
            )
        )
    try:
        pop.stls(tls_context(endpoint))
    except poplib.error_proto as exc:
        if _is_eof(exc):
            raise
        raise ProbeFailed(
            Failure(
                ErrorClass.STARTTLS_UNAVAILABLE,
                f"the server advertised STLS but refused it: {_error_text(exc)}",
                "the server cannot start TLS now; try SSL on port 995",
                Field.SECURITY,
            )
        ) from exc


def _login(pop: _WirePOP3, endpoint: Endpoint, capabilities: dict[str, list[str]]) -> None:
    if capabilities and "USER" not in capabilities:
        raise ProbeFailed(
            Failure(
                ErrorClass.AUTH_UNSUPPORTED,
                "the server does not accept USER/PASS on this connection",
                "the server may accept passwords only over TLS: choose STLS or SSL",
                Field.SECURITY,
            )
        )
    try:
        pop.user(endpoint.username)
        pop.pass_(endpoint.password_value)
    except poplib.error_proto as exc:
        text = _error_text(exc)
        if _is_eof(exc):
            raise
        if "plaintext" in text.lower():
            raise ProbeFailed(
                Failure(
                    ErrorClass.AUTH_UNSUPPORTED,
                    f"the server refuses passwords without TLS: {text}",
                    "choose STLS or SSL",
                    Field.SECURITY,
                )
            ) from exc
        raise ProbeFailed(
            Failure(
                ErrorClass.AUTH_FAILED,
                f"the server rejected the login: {text}",
                "check the user name and password",
                Field.PASSWORD,
            )
        ) from exc


def probe_pop3(
    endpoint: Endpoint, *, policy: NetworkPolicy, deadline_s: float = 30.0
) -> CheckResult:
    """connect → TLS/STLS → CAPA → USER/PASS → STAT → QUIT (QUIT deletes nothing: no DELE)."""

    def body(probe: Probe) -> None:
        pop = _handshake(probe, policy)
        try:
            with probe.step("stat") as note:
                count, size = pop.stat()
                note.message = f"{count} messages, {size} bytes"
            with probe.step("quit") as note:
                note.message = _text(pop.quit())
        finally:
            pop.close()

    return Probe("pop3", endpoint, deadline_s=deadline_s).run(body)


class Pop3Mailbox(Session):
    """A logged-in POP3 session for fetching.

        with Pop3Mailbox(endpoint, policy=policy) as box:
            for number, uid in box.uidl():
                if uid not in seen: store(box.retrieve(number)); box.delete(number)
        # leaving the block sends QUIT: only now are the deleted messages removed

    Leaving the block always QUITs, even on an exception: delete only what is already stored,
    and those deletions are then the right ones to commit (`abort()` discards them instead).
    `transcript` records the whole conversation; without one only the login is recorded
    (in `handshake`). Failures raise Postroom protocol errors.
    """

    protocol = "pop3"

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        policy: NetworkPolicy,
        open_deadline_s: float | None = 60.0,
        transcript: Transcript | None = None,
    ) -> None:
        super().__init__(endpoint, policy=policy, deadline_s=open_deadline_s, transcript=transcript)
        self._pop: _WirePOP3 | None = None

    def open(self) -> None:
        if self._pop is not None:
            return
        self._pop, wire = self._open_with(_handshake)
        wire.deadline = Deadline(None)

    def stat(self) -> tuple[int, int]:
        """(message count, total size in bytes)."""
        with self._call("stat") as pop:
            count, size = pop.stat()
            return int(count), int(size)

    def uidl(self) -> list[tuple[int, str]]:
        """(message number, unique id) for every message (RFC 1939 §7)."""
        with self._call("uidl") as pop:
            _resp, lines, _octets = pop.uidl()
        listing = []
        for line in lines:
            number, _, uid = _text(line).partition(" ")
            listing.append((int(number), uid.strip()))
        return listing

    def retrieve(self, number: int) -> bytes:
        """RETR: the message exactly as stored, dot-stuffing undone, CRLF line ends."""
        with self._call("retr") as pop:
            _resp, lines, _octets = pop.retr(number)
        return b"\r\n".join(lines) + b"\r\n"

    def delete(self, number: int) -> None:
        """DELE: mark for deletion; takes effect at quit()."""
        with self._call("dele") as pop:
            pop.dele(number)

    def quit(self) -> None:
        """QUIT: end the session and commit the deletions."""
        with self._call("quit") as pop:
            try:
                pop.quit()
            finally:
                pop.close()
                self._pop = None

    close = quit

    def abort(self) -> None:
        """Drop the connection without QUIT: the server forgets every DELE of this session."""
        pop, self._pop = self._pop, None
        if pop is not None:
            pop.close()

    def __enter__(self) -> Pop3Mailbox:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pop is None:
            return
        try:
            self.quit()
        except errors.ProtocolError:
            if exc is None:
                raise  # otherwise the original error matters more than a failed QUIT

    @contextmanager
    def _call(self, step: str) -> Iterator[_WirePOP3]:
        if self._pop is None:
            raise errors.ConnectFailed("the POP3 mailbox is not open")
        try:
            yield self._pop
        except errors.PostroomError:
            raise
        except Exception as exc:
            context = ProbeContext(
                "pop3", step, self.endpoint.host, self.endpoint.port, self.endpoint.security
            )
            raise as_error(classify(exc, context), exc) from exc
