"""The inbox: storing fetched messages (raw first, parse second, quarantine on failure) and
reading them back — search, paging, detail, raw .eml, attachments, quarantine, re-parse.

Storing is split in two so the fetcher can batch: `prepare()` writes the raw file and parses
outside any transaction; `record()` inserts a batch inside the caller's transaction (together with
the cursor, so the cursor only ever moves past messages that are stored).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace

import sqlalchemy as sa

from postroom.domain.inbox import (
    InboxMessage,
    InboxQuery,
    MessageStatus,
    Origin,
    ParsedMessage,
    StoreOutcome,
    dedupe_key,
    raw_message_id,
)
from postroom.domain.people import Actor
from postroom.errors import Forbidden, InvalidInput, NotFound
from postroom.services.accounts import AccountService
from postroom.services.pages import Page
from postroom.services.parsing import Unparseable, extract_part, parse_message
from postroom.storage.inbox import InboxRepository, NewMessage
from postroom.storage.rawstore import RawRef, RawStore
from postroom.storage.types import utcnow

INLINE_MAX = 64 * 1024
"""Raw messages up to this size are kept in their database row, larger ones as files."""


@dataclass(frozen=True, slots=True)
class RawDownload:
    """A raw message or attachment to stream to a client."""

    filename: str
    content_type: str
    size: int
    chunks: Iterator[bytes]


def _parse(raw: bytes, size: int, max_bytes: int) -> tuple[ParsedMessage | None, str]:
    if size > max_bytes:
        return None, f"size {size} bytes exceeds the limit of {max_bytes} bytes"
    try:
        return parse_message(raw), ""
    except Unparseable as exc:
        return None, str(exc)


class InboxService:
    def __init__(
        self,
        engine: sa.Engine,
        repo: InboxRepository,
        raw_store: RawStore,
        accounts: AccountService,
        *,
        max_message_bytes: int,
    ) -> None:
        self._engine = engine
        self._repo = repo
        self.raw_store = raw_store
        self._accounts = accounts
        self._max_bytes = max_message_bytes

    # storing (called by the fetcher) -------------------------------------------------------

    def prepare(self, account_id: int, raw: bytes, origin: Origin) -> NewMessage:
        """Keep the raw bytes (in the row when small, else written to the raw store), then
        parse them; never raises for bad mail."""
        inline = len(raw) <= INLINE_MAX
        if inline:
            ref = RawRef(hashlib.sha256(raw).hexdigest(), len(raw))
        else:
            ref = self.raw_store.put(raw, deferred=True)  # made durable by record()
        parsed, reason = _parse(raw, ref.size, self._max_bytes)
        return NewMessage(
            account_id=account_id,
            dedupe_key=dedupe_key(raw_message_id(raw), ref.sha256),
            raw=ref,
            origin=origin,
            fetched_at=utcnow(),
            parsed=parsed,
            quarantine_reason=reason,
            raw_inline=raw if inline else None,
        )

    def record(self, conn: sa.Connection, batch: Sequence[NewMessage]) -> list[StoreOutcome]:
        """Insert a prepared batch in `conn`'s transaction; duplicates are skipped, not errors.
        The raw files are flushed to disk first, so no committed row points at a lost file."""
        self.raw_store.sync(new.raw for new in batch if new.raw_inline is None)
        ids = self._repo.insert_messages(conn, batch)
        return [
            StoreOutcome.DUPLICATE
            if new_id is None
            else (StoreOutcome.STORED if new.parsed else StoreOutcome.QUARANTINED)
            for new, new_id in zip(batch, ids, strict=True)
        ]

    def ingest(self, account_id: int, raw: bytes, origin: Origin | None = None) -> StoreOutcome:
        """Store one message by itself (imports and tests); same rules as a fetch."""
        new = self.prepare(account_id, raw, origin or Origin())
        with self._engine.begin() as conn:
            return self.record(conn, [new])[0]

    # reading ------------------------------------------------------------------------------

    def list(self, actor: Actor, account_id: int, query: InboxQuery) -> Page[InboxMessage]:
        """One page of an account's messages (bodies left out)."""
        self._accounts.get(actor, account_id)
        return self._page(query, account_id=account_id, visible=None)

    def quarantine(
        self, actor: Actor, query: InboxQuery, account_id: int | None = None
    ) -> Page[InboxMessage]:
        """Quarantined messages of one account, or of every account the actor can read."""
        query = replace(query, status=MessageStatus.QUARANTINED)
        if account_id is not None:
            self._accounts.get(actor, account_id)
            return self._page(query, account_id=account_id, visible=None)
        return self._page(
            query, account_id=None, visible=None if actor.is_admin else actor.team_ids
        )

    def get(self, actor: Actor, message_id: int) -> InboxMessage:
        """One message with bodies and attachments; NotFound when invisible to the actor."""
        with self._engine.begin() as conn:
            message = self._repo.get(conn, message_id)
        self._visible(actor, message)
        return message

    def raw(self, actor: Actor, message_id: int) -> RawDownload:
        """The message exactly as received, as `message-<id>.eml` (streamed from its file)."""
        message = self.get(actor, message_id)
        with self._engine.begin() as conn:
            inline = self._repo.inline_raw(conn, message_id)
        return RawDownload(
            filename=f"message-{message.id}.eml",
            content_type="message/rfc822",
            size=message.size,
            chunks=iter((inline,))
            if inline is not None
            else self.raw_store.iter_chunks(message.raw_sha256),
        )

    def raw_bytes(self, actor: Actor, message_id: int) -> bytes:
        """The message exactly as received, in memory."""
        return b"".join(self.raw(actor, message_id).chunks)

    def attachment(self, actor: Actor, message_id: int, index: int) -> RawDownload:
        """One attachment, decoded, by its index in the message's attachment list."""
        message = self.get(actor, message_id)
        listed = {a.index: a for a in message.attachments}
        if index not in listed:
            raise NotFound(f"message {message_id} has no attachment {index}")
        try:
            filename, ctype, data = extract_part(self.raw_bytes(actor, message_id), index)
        except LookupError:
            raise NotFound(f"message {message_id} has no attachment {index}") from None
        return RawDownload(
            filename=filename or listed[index].filename or f"attachment-{index}",
            content_type=ctype,
            size=len(data),
            chunks=iter((data,)),
        )

    def reparse(self, actor: Actor, message_id: int) -> InboxMessage:
        """Parse the stored raw bytes again (after a parser fix, or to retry a quarantined
        message); the result replaces the parsed view. Managers and admins only."""
        message = self.get(actor, message_id)
        account = self._accounts.get(actor, message.account_id)
        if not actor.can_manage(account.team_id):
            raise Forbidden("you cannot re-parse messages of this account")
        raw = self.raw_bytes(actor, message_id)
        parsed, reason = _parse(raw, len(raw), self._max_bytes)
        with self._engine.begin() as conn:
            self._repo.replace_parsed(conn, message_id, parsed, reason)
            return self._repo.get(conn, message_id)

    # helpers -------------------------------------------------------------------------------

    def _page(
        self, query: InboxQuery, *, account_id: int | None, visible: frozenset[int] | None
    ) -> Page[InboxMessage]:
        if not 1 <= query.limit <= 500 or query.offset < 0:
            raise InvalidInput(fields={"limit": "must be between 1 and 500 (offset ≥ 0)"})
        if query.since and query.until and query.since > query.until:
            raise InvalidInput(fields={"since": "must not be after until"})
        with self._engine.begin() as conn:
            items, total = self._repo.search(
                conn, query, account_id=account_id, visible_team_ids=visible
            )
        return Page(items, total, query.offset, query.limit)

    def _visible(self, actor: Actor, message: InboxMessage) -> None:
        try:
            self._accounts.get(actor, message.account_id)
        except NotFound:
            raise NotFound(f"message {message.id} does not exist") from None
