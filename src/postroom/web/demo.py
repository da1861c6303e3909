"""The demo behind `make run`: an in-process SMTP capture server on a run-time loopback port, a
preconfigured "Demo" account sending to it (the system default), and the first admin.

`postroom serve --demo` calls `ensure_admin` and `prepare_demo`; the Demo inbox page
(web/pages/demo.py) lists what the capture server received, so a newcomer can log in, send a
test e-mail and see it arrive without any real mail server.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.smtp import SMTP, Envelope

from postroom.domain.accounts import AccountDraft, AuthMode, OutgoingDraft, Security, SendMode
from postroom.domain.people import Actor, Role
from postroom.errors import NotFound
from postroom.wiring import Container

DEMO_NAME = "Demo"
DEMO_ADDRESS = "demo@postroom.example"
ADMIN_EMAIL = "admin@postroom.local"
KEEP = 200  # the capture server remembers this many messages


@dataclass(frozen=True, slots=True)
class CapturedMessage:
    received_at: datetime
    mail_from: str
    rcpt_to: tuple[str, ...]
    subject: str
    from_header: str
    to_header: str
    body: str
    size: int


def _captured(envelope: Envelope) -> CapturedMessage:
    raw = envelope.original_content or envelope.content or b""
    raw = raw if isinstance(raw, bytes) else raw.encode()
    subject = from_header = to_header = body = ""
    try:  # parse defensively: a malformed header must not lose the capture
        msg = message_from_bytes(raw, policy=policy.default)
        subject, from_header, to_header = (str(msg.get(h, "")) for h in ("subject", "from", "to"))
        part = msg.get_body(("plain", "html")) if isinstance(msg, EmailMessage) else None
        body = part.get_content() if part is not None else ""
    except Exception as exc:  # any parser failure is shown in the page, never raised
        body = f"(could not parse the message: {exc})"
    return CapturedMessage(
        datetime.now(UTC),
        envelope.mail_from or "",
        tuple(envelope.rcpt_tos),
        subject,
        from_header,
        to_header,
        body,
        len(raw),
    )


class CaptureServer:
    """An aiosmtpd server on 127.0.0.1 (port chosen by the OS) in its own thread."""

    def __init__(self) -> None:
        self.messages: deque[CapturedMessage] = deque(maxlen=KEEP)
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name="demo-smtp"
        )

    async def handle_DATA(self, server: Any, session: Any, envelope: Envelope) -> str:  # noqa: N802 - aiosmtpd hook name
        self.messages.appendleft(_captured(envelope))
        return "250 OK: captured by the Postroom demo"

    def start(self) -> CaptureServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self._loop)
        self._server = future.result(timeout=10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def _listen(self) -> asyncio.Server:
        return await self._loop.create_server(
            lambda: SMTP(self, hostname="postroom-demo", loop=self._loop), "127.0.0.1", 0
        )

    def stop(self) -> None:
        """Close the listener and end the thread (idempotent)."""
        if self._loop.is_closed():
            return
        if self._server is not None:
            self._loop.call_soon_threadsafe(self._server.close)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


@dataclass
class DemoHandle:
    """What `prepare_demo` started: stop it on shutdown."""

    server: CaptureServer
    account_id: int
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def messages(self) -> list[CapturedMessage]:
        return list(self.server.messages)

    def stop(self) -> None:
        self.server.stop()
        self.extras.pop("demo", None)


def _demo_draft(port: int) -> AccountDraft:
    return AccountDraft(
        name=DEMO_NAME,
        email=DEMO_ADDRESS,
        display_name="Postroom demo",
        label="demo",
        color="#8250df",
        description="Sends to the in-process capture server of `postroom serve --demo`.",
        outgoing=OutgoingDraft(
            host="127.0.0.1",
            port=port,
            security=Security.NONE,
            auth_mode=AuthMode.NONE,
            from_address=DEMO_ADDRESS,
            send_mode=SendMode.IMMEDIATE,
            timeout_s=10,
        ),
    )


def prepare_demo(container: Container) -> DemoHandle:
    """Start the capture server; create the Demo account or point it at the new port; make it
    active and the system default for outgoing mail. Returns the handle (also kept in
    `container.extras["demo"]`, which shows the Demo inbox page)."""
    server = CaptureServer().start()
    system, accounts = Actor.system(), container.accounts
    draft = _demo_draft(server.port)
    try:
        account = accounts.find(system, DEMO_NAME)
    except NotFound:
        account = accounts.create(system, draft)
    else:
        if account.status.value == "deleted":
            account = accounts.transition(system, account.id, "restore")
        account = accounts.update(system, account.id, {"outgoing": {"port": server.port}})
    if account.status.value == "inactive":
        account = accounts.transition(system, account.id, "activate")
    accounts.set_default(system, account.id, "outgoing")
    handle = DemoHandle(server, account.id, container.extras)
    container.extras["demo"] = handle
    return handle


def ensure_admin(container: Container, email: str = ADMIN_EMAIL) -> str | None:
    """Create the first admin when there is none; return its one-time password (print it once),
    or None when an admin already exists."""
    if container.people.has_admin():
        return None
    password = secrets.token_urlsafe(12)
    container.people.create_user(
        Actor.system(), email=email, name="Administrator", role=Role.ADMIN, password=password
    )
    return password
