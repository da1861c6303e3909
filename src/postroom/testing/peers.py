"""Real peers for tests, on 127.0.0.1 with OS-chosen ports.

- `SmtpPeer`: aiosmtpd in-process — plain, STARTTLS (required) or implicit TLS; AUTH PLAIN/LOGIN
  against a user table; a thread-safe capture of received messages; chosen senders and
  recipients refused; PIPELINING offered on request.
- `ScriptedPeer`: a hostile line server playing a `Script` (greeting, replies by command
  prefix, drop, silence, endless lines, huge lines) for any line protocol (SMTP, IMAP, POP3).

Both are context managers and usable from any test, including other helpers' suites.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import ssl
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from postroom.testing.tls import ServerCert

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class ReceivedMessage:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes


class _Capture:
    """aiosmtpd handler: refuse chosen senders and recipients, keep every accepted message."""

    def __init__(self, refused: Mapping[str, str], refused_senders: Mapping[str, str]) -> None:
        self.lock = threading.Lock()
        self.messages: list[ReceivedMessage] = []
        self.refused = {k.lower(): v for k, v in refused.items()}
        self.refused_senders = {k.lower(): v for k, v in refused_senders.items()}

    async def handle_MAIL(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        refusal = self.refused_senders.get(address.lower())
        if refusal:
            return refusal  # no sender set: aiosmtpd answers the RCPTs after it with 503
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        with self.lock:
            refusal = self.refused.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = ReceivedMessage(
            envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.original_content)
        )
        with self.lock:
            self.messages.append(message)
        return "250 2.0.0 OK queued"


class _PipeliningCapture(_Capture):
    """Also offers PIPELINING (RFC 2920), which aiosmtpd does not: it reads each command from
    its buffered stream in order, so pipelined commands are answered like lock-step ones."""

    async def handle_EHLO(  # noqa: N802 - aiosmtpd's hook name
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # what aiosmtpd does itself when there is no hook
        return [*responses[:-1], "250-PIPELINING", responses[-1]]


class _Authenticator:
    def __init__(self, users: Mapping[str, str]) -> None:
        self.users = dict(users)

    def __call__(
        self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword):
            user, password = data.login.decode(), data.password.decode()
            if self.users.get(user) == password:
                return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


class _BoundController(Controller):
    """aiosmtpd's Controller on a socket we bound to port 0 (it cannot probe port 0 itself)."""

    def __init__(self, handler: Any, listener: socket.socket, **kwargs: Any) -> None:
        self._listener = listener
        super().__init__(handler, hostname=LOOPBACK, port=listener.getsockname()[1], **kwargs)

    def _create_server(self) -> Any:
        return self.loop.create_server(
            self._factory_invoker, sock=self._listener, ssl=self.ssl_context
        )


class SmtpPeer:
    """An in-process SMTP server. `mode` is "plain", "starttls" (required) or "ssl".

    `users` enables AUTH PLAIN/LOGIN (offered over plaintext too in "plain" mode; `auth_exclude`
    withdraws mechanisms, e.g. ("PLAIN",) to force LOGIN);
    `refuse` maps recipient → reply, e.g. {"nobody@example.test": "550 5.1.1 No such user"},
    and `refuse_senders` envelope sender → reply for MAIL; `pipelining` offers PIPELINING.
    """

    def __init__(
        self,
        *,
        mode: str = "plain",
        cert: ServerCert | None = None,
        users: Mapping[str, str] | None = None,
        refuse: Mapping[str, str] | None = None,
        refuse_senders: Mapping[str, str] | None = None,
        auth_exclude: Sequence[str] = (),
        pipelining: bool = False,
    ) -> None:
        if mode not in ("plain", "starttls", "ssl"):
            raise ValueError(f"unknown mode {mode!r}")
        if mode != "plain" and cert is None:
            raise ValueError(f"mode {mode!r} needs a certificate")
        self.mode = mode
        self.host = LOOPBACK
        handler = _PipeliningCapture if pipelining else _Capture
        self._capture = handler(refuse or {}, refuse_senders or {})
        listener = socket.create_server((LOOPBACK, 0))
        self.port: int = listener.getsockname()[1]
        kwargs: dict[str, Any] = {"server_hostname": "peer.test", "ready_timeout": 10.0}
        if users is not None:
            kwargs["authenticator"] = _Authenticator(users)
            kwargs["auth_require_tls"] = mode == "starttls"
            kwargs["auth_exclude_mechanism"] = list(auth_exclude)
        if mode == "starttls" and cert is not None:
            kwargs["tls_context"] = cert.server_context()
            kwargs["require_starttls"] = True
        if mode == "ssl" and cert is not None:
            kwargs["ssl_context"] = cert.server_context()
        self._controller = _BoundController(self._capture, listener, **kwargs)

    @property
    def messages(self) -> list[ReceivedMessage]:
        with self._capture.lock:
            return list(self._capture.messages)

    def refuse(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        with self._capture.lock:
            self._capture.refused[address.lower()] = reply

    def start(self) -> SmtpPeer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpPeer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --- the scripted hostile peer ---------------------------------------------------------------


class Drop:
    """Close the connection."""


class Silence:
    """Say nothing (and keep the connection open)."""


@dataclass(frozen=True)
class Endless:
    """Send `line` again and again until the client goes away."""

    line: bytes


DROP, SILENT = Drop(), Silence()
Action = bytes | Drop | Silence | Endless


@dataclass(frozen=True)
class Script:
    """What the peer does. Replies are chosen by case-insensitive prefix of the client line.

    With `tagged` (IMAP) the prefix is matched after the client's tag, and "{tag}" in a reply
    is replaced by that tag. After a reply starting with "354" the peer reads message data up
    to the "." line and then plays `after_data` (SMTP DATA), or for the first messages of a
    connection `data_replies` in turn. `drop_after` closes the connection when client line N+1
    arrives. `tls` upgrades the connection after a reply starting with `tls_after`.
    """

    greeting: Action = b"220 scripted.test ESMTP\r\n"
    replies: tuple[tuple[bytes, Action], ...] = ()
    default: Action = b"250 OK\r\n"
    after_data: Action = b"250 2.0.0 OK queued\r\n"
    data_replies: tuple[Action, ...] = ()
    drop_after: int | None = None
    tls: ssl.SSLContext | None = field(default=None, compare=False)
    tls_after: bytes = b"220 2.0.0 Ready to start TLS"
    tagged: bool = False

    def reply_to(self, line: bytes) -> Action:
        tag, _, rest = line.partition(b" ")
        upper = (rest if self.tagged else line).upper()
        action = next(
            (a for prefix, a in self.replies if upper.startswith(prefix.upper())), self.default
        )
        if self.tagged and isinstance(action, bytes):
            return action.replace(b"{tag}", tag)
        return action


class _Closed(Exception):
    pass


class _Handler(socketserver.StreamRequestHandler):
    server: _ScriptServer

    def handle(self) -> None:
        self.server.opened(self.connection)
        try:
            self._converse()
        except (_Closed, OSError):
            pass
        finally:
            self.server.closed(self.connection)

    def _converse(self) -> None:
        script, peer = self.server.script, self.server.peer
        reader, sock = self.rfile, self.connection
        self._play(sock, script.greeting)
        count, in_data = 0, False
        data_replies = iter(script.data_replies)
        while True:
            line = reader.readline(65536)
            if not line:
                return
            peer.record(line)
            if in_data:
                if line.rstrip(b"\r\n") == b".":
                    in_data = False
                    self._play(sock, next(data_replies, script.after_data))
                continue
            count += 1
            if script.drop_after is not None and count > script.drop_after:
                return
            action = script.reply_to(line)
            self._play(sock, action)
            if isinstance(action, bytes):
                in_data = action.startswith(b"354")
                if script.tls is not None and action.startswith(script.tls_after):
                    sock = script.tls.wrap_socket(sock, server_side=True)
                    reader = sock.makefile("rb")

    def _play(self, sock: socket.socket, action: Action) -> None:
        if isinstance(action, Drop):
            raise _Closed
        if isinstance(action, Endless):
            while not self.server.stopping.is_set():
                sock.sendall(action.line * 64)
        elif isinstance(action, bytes) and action:
            sock.sendall(action)


class _ScriptServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, script: Script, peer: ScriptedPeer) -> None:
        self.script, self.peer = script, peer
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        super().__init__((LOOPBACK, 0), _Handler)

    def opened(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.add(sock)
            self.peer.connections += 1

    def closed(self, sock: socket.socket) -> None:
        with self._lock:
            self._open.discard(sock)

    def close_all(self) -> None:
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):  # already gone
                    sock.shutdown(socket.SHUT_RDWR)
            self._open.clear()


class ScriptedPeer:
    """A threaded line server on 127.0.0.1:0 that plays `script` to every connection."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.host = LOOPBACK
        self.connections = 0
        self._lock = threading.Lock()
        self._lines: list[bytes] = []
        self._server = _ScriptServer(script, self)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def lines(self) -> list[bytes]:
        """Every line clients sent, in order, across connections."""
        with self._lock:
            return list(self._lines)

    def record(self, line: bytes) -> None:
        with self._lock:
            self._lines.append(line)

    def start(self) -> ScriptedPeer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.stopping.set()
        self._server.shutdown()
        self._server.close_all()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> ScriptedPeer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
