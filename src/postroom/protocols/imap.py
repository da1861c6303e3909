"""IMAP over IMAPClient: the staged probe and the mailbox used for fetching.

IMAPClient is given an imaplib connection we opened ourselves (policy-checked IP, our TLS
context, SNI against the name) whose `readline`/`read`/`send` — imaplib's documented I/O
methods — go through the `Wire` for deadlines and the transcript.
"""

from __future__ import annotations

import imaplib
import itertools
import socket
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

from imapclient import IMAPClient
from imapclient.exceptions import LoginError
from imapclient.response_parser import parse_fetch_response

from postroom import errors
from postroom.domain.accounts import Security
from postroom.domain.checks import CheckResult, ErrorClass, Failure, Field, ProbeContext, classify
from postroom.protocols import tls
from postroom.protocols.endpoints import Endpoint, NetworkPolicy
from postroom.protocols.imapfetch import parse_bulk_fetch, parse_sizes, read_fetch, size_batches
from postroom.protocols.probing import Probe, ProbeFailed, Session, as_error
from postroom.protocols.transcript import Transcript
from postroom.protocols.wire import (
    Deadline,
    Wire,
    tls_context,
    tls_established,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

FETCH_ITEMS = b"(BODY.PEEK[] FLAGS INTERNALDATE RFC822.SIZE)"


class _WireIMAP4(imaplib.IMAP4):
    def __init__(self, wire: Wire, sock: socket.socket, host: str) -> None:
        self._wire = wire
        self._connected = sock
        super().__init__(host, wire.endpoint.port, timeout=wire.endpoint.timeout_s)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return self._connected

    # IMAPClient sets imaplib's debug level to 5, at which imaplib formats the repr of every
    # response it stores — whole message literals included — before its logger drops it: two
    # extra copies of each message and a third of the fetch CPU. The Wire records instead.
    @property
    def debug(self) -> int:
        return 0

    @debug.setter
    def debug(self, value: int) -> None:
        pass

    def readline(self) -> bytes:
        self._wire.arm(self.sock)
        line = super().readline()
        if line:
            self._wire.received(line)
        return line

    def read(self, size: int) -> bytes:
        self._wire.arm(self.sock)
        data = super().read(size)
        self._wire.info(f"server literal: {len(data)} bytes")
        return data

    def send(self, data: Buffer) -> None:
        chunk = bytes(data)
        self._wire.arm(self.sock)
        self._wire.sent(chunk)
        super().send(chunk)


class _WireClient(IMAPClient):  # type: ignore[misc]
    connection: _WireIMAP4
    """The imaplib connection under IMAPClient (ours: made by `_create_IMAP4`)."""

    def __init__(self, wire: Wire, sock: socket.socket) -> None:
        self._wire = wire
        self._connected = sock
        endpoint = wire.endpoint
        super().__init__(
            endpoint.host,
            port=endpoint.port,
            ssl=endpoint.security is Security.SSL,
            ssl_context=tls_context(endpoint),
            timeout=endpoint.timeout_s,
        )
        self.normalise_times = False  # keep INTERNALDATE's own offset (aware datetimes)

    def _create_IMAP4(self) -> imaplib.IMAP4:  # noqa: N802 - IMAPClient's hook
        self.connection = _WireIMAP4(self._wire, self._connected, self.host)
        return self.connection


def _not_imap(exc: imaplib.IMAP4.error, port: int) -> ProbeFailed:
    if "BYE" in str(exc):
        return ProbeFailed(
            Failure(
                ErrorClass.UNEXPECTED_REPLY,
                f"the server refused the session: {exc}",
                "the server is busy or does not accept connections from this address",
            )
        )
    return ProbeFailed(
        Failure(
            ErrorClass.PROTOCOL_ERROR,
            f"the greeting is not IMAP: {exc}",
            f"port {port} may belong to another service (IMAP is usually 993 or 143)",
            Field.PORT,
        )
    )


def _handshake(probe: Probe, policy: NetworkPolicy) -> _WireClient:
    """connect → TLS → greeting + CAPABILITY → STARTTLS → LOGIN."""
    endpoint, wire = probe.endpoint, probe.wire
    sock = probe.connect(policy)
    client: _WireClient | None = None
    try:
        with probe.step("greeting") as note:
            try:
                client = _WireClient(wire, sock)
            except imaplib.IMAP4.error as exc:
                if "EOF" in str(exc) or "socket error" in str(exc):
                    raise  # the peer hung up: classified as a disconnect
                raise _not_imap(exc, endpoint.port) from exc
            note.message = _text(client.welcome)
        if endpoint.security is Security.STARTTLS:
            with probe.step("starttls") as note:
                _starttls(client, endpoint)
                probe.record_tls(tls_established(client.socket(), wire))
                note.message = tls.summary(probe.tls) if probe.tls else ""
        with probe.step("capability") as note:
            capabilities = [_text(c) for c in client.capabilities()]
            note.message = "capabilities: " + " ".join(capabilities)
        with probe.step("login") as note:
            _login(client, endpoint, capabilities)
            note.message = f"logged in as {endpoint.username}"
        return client
    except BaseException:
        if client is not None:
            client.shutdown()
        else:
            sock.close()
        raise


def _starttls(client: _WireClient, endpoint: Endpoint) -> None:
    if not client.has_capability("STARTTLS"):
        raise ProbeFailed(
            Failure(
                ErrorClass.STARTTLS_UNAVAILABLE,
                "the server does not offer STARTTLS",
                f"the server on port {endpoint.port} cannot encrypt with STARTTLS; "
                "choose SSL (usually port 993)",
                Field.SECURITY,
            )
        )
    try:
        client.starttls(tls_context(endpoint))
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        raise ProbeFailed(
            Failure(
                ErrorClass.STARTTLS_UNAVAILABLE,
                f"the server advertised STARTTLS but refused it: {exc}",
                "the server cannot start TLS now; try SSL on port 993",
                Field.SECURITY,
            )
        ) from exc


def _login(client: _WireClient, endpoint: Endpoint, capabilities: Sequence[str]) -> None:
    if "LOGINDISABLED" in capabilities:
        raise ProbeFailed(
            Failure(
                ErrorClass.AUTH_UNSUPPORTED,
                "the server does not allow LOGIN on this connection (LOGINDISABLED)",
                "the server accepts passwords only over TLS: choose STARTTLS or SSL",
                Field.SECURITY,
            )
        )
    try:
        client.login(endpoint.username, endpoint.password_value)
    except LoginError as exc:
        if "PRIVACYREQUIRED" in str(exc).upper():
            raise ProbeFailed(
                Failure(
                    ErrorClass.AUTH_UNSUPPORTED,
                    f"the server refuses passwords without TLS: {exc}",
                    "choose STARTTLS or SSL",
                    Field.SECURITY,
                )
            ) from exc
        raise ProbeFailed(
            Failure(
                ErrorClass.AUTH_FAILED,
                f"the server rejected the login: {exc}",
                "check the user name and password",
                Field.PASSWORD,
            )
        ) from exc


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True, slots=True)
class FolderState:
    uidvalidity: int
    uidnext: int | None
    exists: int


def _folder_state(response: dict[bytes, Any]) -> FolderState:
    uidnext = response.get(b"UIDNEXT")
    return FolderState(
        uidvalidity=int(response[b"UIDVALIDITY"]),
        uidnext=int(uidnext) if uidnext is not None else None,
        exists=int(response.get(b"EXISTS", 0)),
    )


def probe_imap(
    endpoint: Endpoint,
    *,
    policy: NetworkPolicy,
    folders: Sequence[str] = ("INBOX",),
    deadline_s: float = 30.0,
) -> CheckResult:
    """connect → TLS/STARTTLS → CAPABILITY → LOGIN → EXAMINE each folder → LOGOUT."""

    def body(probe: Probe) -> None:
        client = _handshake(probe, policy)
        logged_out = False
        try:
            for folder in folders:
                with probe.step(f"examine {folder}") as note:
                    try:
                        state = _folder_state(client.select_folder(folder, readonly=True))
                    except imaplib.IMAP4.abort:
                        raise
                    except imaplib.IMAP4.error as exc:
                        raise ProbeFailed(
                            Failure(
                                ErrorClass.UNEXPECTED_REPLY,
                                f"the folder {folder!r} cannot be opened: {exc}",
                                "check the folder name (names are case-sensitive except INBOX)",
                            )
                        ) from exc
                    note.message = (
                        f"{state.exists} messages, UIDVALIDITY {state.uidvalidity}, "
                        f"UIDNEXT {state.uidnext}"
                    )
            with probe.step("logout") as note:
                note.message = _text(client.logout())
                logged_out = True
        finally:
            if not logged_out:
                client.shutdown()

    return Probe("imap", endpoint, deadline_s=deadline_s).run(body)


BATCH_BYTES = 8 * 1024 * 1024
"""Default cap on the message bytes of one UID FETCH of bodies."""


@dataclass(frozen=True, slots=True)
class FetchedMessage:
    uid: int
    flags: tuple[str, ...]
    internaldate: datetime | None
    size: int
    raw: bytes


class ImapMailbox(Session):
    """A logged-in IMAP connection for fetching.

        with ImapMailbox(endpoint, policy=policy) as box:
            state = box.select("INBOX")          # compare state.uidvalidity with the cursor
            for message in box.fetch_after("INBOX", cursor_uid):
                store(message); cursor_uid = message.uid

    `open_deadline_s` bounds the login; afterwards each read is bounded by the endpoint's
    timeout only (a large mailbox may take long, but never stalls silently). Failures raise
    Postroom protocol errors (ConnectFailed, ProtocolTimeout, TlsFailed, AuthFailed,
    ProtocolError). `transcript` records the whole conversation; without one only the login
    is recorded (in `handshake`).
    """

    protocol = "imap"

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        policy: NetworkPolicy,
        open_deadline_s: float | None = 60.0,
        transcript: Transcript | None = None,
    ) -> None:
        super().__init__(endpoint, policy=policy, deadline_s=open_deadline_s, transcript=transcript)
        self._client: _WireClient | None = None
        self._selected: str | None = None
        self._tags = itertools.count(1)

    def open(self) -> None:
        if self._client is not None:
            return
        self._client, wire = self._open_with(_handshake)
        wire.deadline = Deadline(None)

    def close(self) -> None:
        """LOGOUT (which also expunges nothing: deletions are explicit)."""
        client, self._client, self._selected = self._client, None, None
        if client is None:
            return
        try:
            client.logout()
        except Exception:
            client.shutdown()

    def __enter__(self) -> ImapMailbox:
        self.open()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def is_open(self) -> bool:
        return self._client is not None

    @property
    def capabilities(self) -> tuple[str, ...]:
        with self._call("capability") as client:
            return tuple(_text(c) for c in client.capabilities())

    def select(self, folder: str, *, readonly: bool = False) -> FolderState:
        """SELECT (read-write, so flags and moves work; BODY.PEEK never sets \\Seen), or with
        `readonly` EXAMINE, which changes nothing on the server: no \\Recent taken over, no
        index write (on a Dovecot mailbox of 10,000 messages a SELECT after new mail took
        ~30 ms, most of an incremental sync)."""
        with self._call("examine" if readonly else "select") as client:
            state = _folder_state(client.select_folder(folder, readonly=readonly))
        self._selected = folder
        return state

    def fetch_after(
        self,
        folder: str,
        last_uid: int,
        batch_size: int = 100,
        batch_bytes: int = BATCH_BYTES,
        *,
        ahead: int = 0,
    ) -> Iterator[FetchedMessage]:
        """Messages with UID > last_uid, oldest first.

        The sizes come first (`UID FETCH n:* (RFC822.SIZE)`, which also lists the UIDs), then
        the bodies in batches of at most `batch_size` messages and `batch_bytes` bytes, so
        that memory stays bounded whatever the mailbox holds; a message larger than
        `batch_bytes` is fetched alone. UIDs at or below `last_uid` are dropped: `UID n:*`
        always matches the highest UID, even when it is lower than n (RFC 9051 §6.4.8).

        With `ahead` > 0 that many further batches are asked for before the caller has
        taken this one (IMAP pipelining), so the server reads them while the caller works:
        only for callers that send no other command in between (keep-on-server). Leaving the
        iteration early with batches still in flight closes the connection (their answers
        would otherwise be taken for those of the next command). Bodies are read by
        `read_fetch` and the narrow `parse_bulk_fetch`, with IMAPClient's general parser for
        a response in any other shape.
        """
        if batch_size < 1 or batch_bytes < 1:
            raise errors.InvalidInput(fields={"batch_size": "must be at least 1"})
        self._ensure_selected(folder)
        # Our own command and reader: IMAPClient's fetch() takes no "n:*" range, and imaplib's
        # response loop cost a twentieth of a first sync on the listing of a large mailbox.
        tag = self._send(b"UID FETCH %d:* (RFC822.SIZE)" % (last_uid + 1), "fetch sizes")
        lines = self._answer(tag, "fetch sizes")
        sizes = [(uid, size) for uid, size in parse_sizes(lines) if uid > last_uid]
        batches = size_batches(sizes, batch_size, batch_bytes)
        in_flight: deque[tuple[bytes, list[int]]] = deque()
        # By UID, not by command: a server may interleave the answers of pipelined commands
        # (Dovecot does), so a batch's messages can arrive before the previous one completes.
        received: dict[int, dict[bytes, Any]] = {}
        try:
            for _ in range(1 + max(ahead, 0)):
                self._ask(batches, in_flight)
            while in_flight:
                tag, batch = in_flight.popleft()
                lines = self._answer(tag, "fetch")
                self._ask(batches, in_flight)  # the server reads it while we work
                received.update(parse_bulk_fetch(lines) or parse_fetch_response(lines, False, True))
                for uid in batch:
                    item = received.pop(uid, None)
                    if item is None or b"BODY[]" not in item:
                        continue  # expunged by someone else between the two FETCHes
                    yield FetchedMessage(
                        uid=uid,
                        flags=tuple(_text(f) for f in item.get(b"FLAGS", ())),
                        internaldate=item.get(b"INTERNALDATE"),
                        size=int(item.get(b"RFC822.SIZE", len(item[b"BODY[]"]))),
                        raw=bytes(item[b"BODY[]"]),
                    )
        finally:
            if in_flight:
                self._abandon()

    def _ask(self, batches: Iterator[list[int]], in_flight: deque[tuple[bytes, list[int]]]) -> None:
        """Send the UID FETCH of the next batch, if any."""
        batch = next(batches, None)
        if batch is not None:
            uid_set = ",".join(map(str, batch)).encode()
            in_flight.append(
                (self._send(b"UID FETCH " + uid_set + b" " + FETCH_ITEMS, "fetch"), batch)
            )

    def _send(self, command: bytes, step: str) -> bytes:
        """Send `command` under a tag of our own (imaplib's are four capitals and a number, so
        they never meet) and return the tag; its answer is read with `read_fetch`."""
        tag = b"pf%d" % next(self._tags)
        with self._call(step) as client:
            client.connection.send(tag + b" " + command + b"\r\n")
        return tag

    def _answer(self, tag: bytes, step: str) -> list[Any]:
        """The FETCH data answering our command `tag` (imaplib's shape); its failure raised."""
        with self._call(step) as client:
            lines, status = read_fetch(client.connection.readline, client.connection.read, tag)
            if not status.startswith(b"OK"):
                raise imaplib.IMAP4.error(f"FETCH failed: {_text(status)}")
        return lines

    def _abandon(self) -> None:
        """Drop the connection without LOGOUT (answers are still in flight)."""
        client, self._client, self._selected = self._client, None, None
        if client is not None:
            client.shutdown()

    def uids_since(self, folder: str, since: date) -> list[int]:
        """UIDs of messages whose INTERNALDATE is on or after `since` (SEARCH SINCE, day only)."""
        self._ensure_selected(folder)
        with self._call("search") as client:
            return sorted(client.search(["SINCE", since]))

    def mark_seen(self, uids: Iterable[int]) -> None:
        with self._call("store") as client:
            client.add_flags(list(uids), [b"\\Seen"], silent=True)

    def move(self, uids: Iterable[int], folder: str) -> None:
        """MOVE (RFC 6851) when offered, else COPY + \\Deleted + EXPUNGE of just these UIDs."""
        batch = list(uids)
        with self._call("move") as client:
            if client.has_capability("MOVE"):
                client.move(batch, folder)
                return
            client.copy(batch, folder)
        self.delete(batch)

    def delete(self, uids: Iterable[int]) -> None:
        """\\Deleted + EXPUNGE. With UIDPLUS only these UIDs are expunged (UID EXPUNGE);
        without it a plain EXPUNGE also removes others' \\Deleted messages — unavoidable."""
        batch = list(uids)
        with self._call("delete") as client:
            client.delete_messages(batch, silent=True)
            if client.has_capability("UIDPLUS"):
                client.expunge(batch)
            else:
                client.expunge()

    def _ensure_selected(self, folder: str) -> None:
        if self._selected != folder:
            self.select(folder)

    @contextmanager
    def _call(self, step: str) -> Iterator[_WireClient]:
        if self._client is None:
            raise errors.ConnectFailed("the IMAP mailbox is not open")
        try:
            yield self._client
        except errors.PostroomError:
            raise
        except Exception as exc:
            context = ProbeContext(
                "imap", step, self.endpoint.host, self.endpoint.port, self.endpoint.security
            )
            raise as_error(classify(exc, context), exc) from exc
