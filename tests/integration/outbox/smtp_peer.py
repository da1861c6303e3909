"""A scripted SMTP server on 127.0.0.1 port 0 for delivery tests: it accepts by default and can
be told to answer chosen commands with chosen replies, to drop the line after the final ".",
or to stall. It records every accepted message (envelope + Message-ID), so tests count
duplicates at the sink. Thread-safe; one thread per connection."""

from __future__ import annotations

import re
import socket
import socketserver
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

DROP = "<drop>"  # close the connection instead of answering
STALL = "<stall>"  # say nothing until the client goes away


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    @property
    def message_id(self) -> str:
        match = re.search(rb"(?im)^Message-ID:\s*(<[^>]+>)", self.data)
        return match.group(1).decode() if match else ""


@dataclass
class Script:
    """Replies by command: keys 'greeting', 'AUTH', 'MAIL', 'RCPT', 'RCPT:<address>', 'DATA',
    'DOT' (the final "."); 'MAIL#2', 'DOT#1' … answer only the n-th of them on a connection."""

    replies: dict[str, str] = field(default_factory=dict)
    # Apply the script only to the first N connections (None: always); later ones accept.
    connections: int | None = None
    # Wait this long before answering the final "." (keeps messages in flight for crash tests).
    delay_s: float = 0.0


class ScriptedSmtp:
    # Offer PIPELINING (RFC 2920) in EHLO; the peer reads commands line by line either way.
    pipelining = False

    def __init__(self, script: Script | None = None) -> None:
        self.script = script or Script()
        self.received: list[Received] = []
        self.connections = 0
        self.auth_attempts = 0
        self._lock = threading.Lock()
        peer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                peer._serve(self.connection, self.rfile)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port: int = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> ScriptedSmtp:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def message_ids(self) -> Counter[str]:
        with self._lock:
            return Counter(r.message_id for r in self.received)

    def _serve(self, conn: socket.socket, rfile: object) -> None:
        with self._lock:
            self.connections += 1
            scripted = (
                self.script.connections is None or self.connections <= self.script.connections
            )
        replies = self.script.replies if scripted else {}
        seen: Counter[str] = Counter()  # per command, on this connection: for "KEY#n"

        def reply_for(key: str, default: str) -> str:
            seen[key] += 1
            return replies.get(f"{key}#{seen[key]}", replies.get(key, default))

        def say(reply: str) -> bool:
            if reply == DROP:
                return False
            if reply == STALL:
                time.sleep(30)
                return False
            conn.sendall(reply.encode() + b"\r\n")
            return not reply.startswith("421")

        if not say(replies.get("greeting", "220 scripted.test ESMTP")):
            return
        # Like a real server, RCPT needs an accepted MAIL and DATA an accepted RCPT (answered
        # in order, pipelined or not); the script can still say anything to any command.
        sender: str | None = None
        recipients: list[str] = []
        reader = rfile  # type: ignore[assignment]
        while True:
            line = reader.readline()  # type: ignore[attr-defined]
            if not line:
                return
            command = line.decode(errors="replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                extra = b"250-PIPELINING\r\n" if self.pipelining else b""
                conn.sendall(
                    b"250-scripted.test\r\n250-8BITMIME\r\n250-AUTH PLAIN\r\n"
                    + extra
                    + b"250 SIZE 100000000\r\n"
                )
            elif verb == "AUTH":
                with self._lock:
                    self.auth_attempts += 1
                if not say(reply_for("AUTH", "235 2.7.0 ok")):
                    return
            elif verb == "MAIL":
                reply = reply_for("MAIL", "250 2.1.0 ok")
                accepted = reply.startswith("25")
                sender = command.split(":", 1)[1].split()[0].strip("<>") if accepted else None
                recipients = []
                if not say(reply):
                    return
            elif verb == "RCPT":
                address = command.split(":", 1)[1].strip().strip("<>")
                default = "250 2.1.5 ok" if sender is not None else "503 5.5.1 need MAIL"
                reply = replies.get(f"RCPT:{address}", reply_for("RCPT", default))
                if reply.startswith("25") and sender is not None:
                    recipients.append(address)
                if not say(reply):
                    return
            elif verb == "DATA":
                default = "354 go ahead" if recipients else "554 5.5.1 no valid recipients"
                reply = reply_for("DATA", default)
                if not say(reply):
                    return
                if not reply.startswith("354"):
                    continue
                chunks = []
                while True:
                    data_line = reader.readline()  # type: ignore[attr-defined]
                    if not data_line:  # closed before the final ".": nothing is delivered
                        return
                    if data_line == b".\r\n":
                        break
                    chunks.append(data_line[1:] if data_line.startswith(b"..") else data_line)
                reply = reply_for("DOT", "250 2.0.0 queued")
                if reply.startswith("25") or reply == DROP:
                    # Recorded before the reply: a drop after "." still delivered it (the case
                    # that makes the sender's outcome unknown), and so does a slow reply.
                    with self._lock:
                        self.received.append(Received(sender or "", recipients, b"".join(chunks)))
                time.sleep(self.script.delay_s)
                sender, recipients = None, []
                if not say(reply):
                    return
            elif verb == "RSET":
                sender, recipients = None, []
                conn.sendall(b"250 2.0.0 ok\r\n")
            elif verb == "QUIT":
                conn.sendall(b"221 2.0.0 bye\r\n")
                return
            elif verb == "NOOP":
                conn.sendall(b"250 2.0.0 ok\r\n")
            else:
                conn.sendall(b"502 5.5.2 unknown\r\n")
