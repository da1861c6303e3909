"""Inbox repository: stored messages, attachments, IMAP cursors and POP3 UIDLs (the fetch
schedule is storage/fetch_schedule.py).

Inserting a message ignores a duplicate dedupe key (`ON CONFLICT DO NOTHING`, the same on SQLite
and PostgreSQL), so a re-fetched message after a crash costs nothing and never aborts the batch.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from postroom.domain.inbox import (
    Address,
    AttachmentInfo,
    Cursor,
    InboxMessage,
    InboxQuery,
    MessageStatus,
    Origin,
    ParsedMessage,
    SortField,
)
from postroom.errors import NotFound
from postroom.storage.bulk import BulkInsert
from postroom.storage.rawstore import RawRef
from postroom.storage.tables.core import accounts
from postroom.storage.tables.inbox import (
    inbox_attachments,
    inbox_cursors,
    inbox_messages,
    inbox_pop3_uidls,
)

_m = inbox_messages.c
_SORT = {
    SortField.DATE: _m.sent_at,
    SortField.FETCHED: _m.fetched_at,
    SortField.SUBJECT: _m.subject,
    SortField.SENDER: _m.from_email,
    SortField.SIZE: _m.size,
}
_LIST_COLUMNS = [
    c for c in inbox_messages.c if c.name not in ("text_body", "html_body", "raw_inline")
]


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A fetched message ready to be recorded; its raw file is already in the raw store."""

    account_id: int
    dedupe_key: str
    raw: RawRef
    origin: Origin
    fetched_at: datetime
    parsed: ParsedMessage | None
    quarantine_reason: str = ""
    raw_inline: bytes | None = None  # the raw bytes when kept in the row, not in a file


def _insert_ignore(conn: sa.Connection, table: sa.Table) -> Any:
    """An INSERT that skips rows violating a unique constraint, on either database."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    return dialect.insert(table).on_conflict_do_nothing()


def _addresses(values: Sequence[Address]) -> list[list[str]]:
    return [[a.name, a.email] for a in values]


_EMPTY_PARSED: tuple[Any, ...] = ("", "", [], [], [], "", None, None, "", [], "", "", False)


def _parsed_row(p: ParsedMessage | None) -> tuple[Any, ...]:
    """The parsed view's column values (_PARSED_COLUMNS), empty for a quarantined message."""
    if p is None:
        return _EMPTY_PARSED
    return (
        p.from_.name if p.from_ else "",
        p.from_.email if p.from_ else "",
        _addresses(p.to),
        _addresses(p.cc),
        _addresses(p.reply_to),
        p.subject,
        p.date,
        p.message_id,
        p.in_reply_to,
        list(p.references),
        p.text_body,
        p.html_body,
        bool(p.attachments),
    )


def _message_row(new: NewMessage) -> tuple[Any, ...]:
    """The row of `_INSERT_MESSAGE` for a message (a tuple: the batch insert's hot path)."""
    o = new.origin
    status = MessageStatus.PARSED if new.parsed else MessageStatus.QUARANTINED
    return (
        new.account_id,
        new.dedupe_key,
        status.value,
        new.quarantine_reason,
        o.folder,
        o.uid,
        o.uidvalidity,
        o.uidl,
        list(o.flags),
        o.internaldate,
        new.raw.sha256,
        new.raw_inline,
        new.raw.size,
        new.fetched_at,
        *_parsed_row(new.parsed),
    )


# The parsed view's columns, in the order of _parsed_row, then every column a new row sets.
_PARSED_COLUMNS = [
    "from_name", "from_email", "to_addrs", "cc_addrs", "reply_to_addrs", "subject", "sent_at",
    "message_id", "in_reply_to", "references", "text_body", "html_body", "has_attachments",
]  # fmt: skip
_MESSAGE_COLUMNS = [
    "account_id", "dedupe_key", "status", "quarantine_reason", "folder", "uid", "uidvalidity",
    "pop3_uidl", "flags", "internaldate", "raw_sha256", "raw_inline", "size", "fetched_at",
    *_PARSED_COLUMNS,
]  # fmt: skip
_INSERT_MESSAGE = BulkInsert(
    inbox_messages,
    _MESSAGE_COLUMNS,
    returning=["id", "account_id", "dedupe_key"],
    ignore_conflicts=True,
)
_INSERT_ATTACHMENT = BulkInsert(
    inbox_attachments,
    ["message_id", "part_index", "filename", "content_type", "size", "content_id", "inline"],
)


def _to_message(row: sa.Row[Any], attachments: Sequence[AttachmentInfo] = ()) -> InboxMessage:
    m = row._mapping
    return InboxMessage(
        id=m["id"],
        account_id=m["account_id"],
        status=MessageStatus(m["status"]),
        quarantine_reason=m["quarantine_reason"],
        dedupe_key=m["dedupe_key"],
        raw_sha256=m["raw_sha256"],
        size=m["size"],
        origin=Origin(
            folder=m["folder"],
            uid=m["uid"],
            uidvalidity=m["uidvalidity"],
            uidl=m["pop3_uidl"],
            flags=tuple(m["flags"]),
            internaldate=m["internaldate"],
        ),
        fetched_at=m["fetched_at"],
        from_=Address(m["from_name"], m["from_email"]) if m["from_email"] else None,
        to=tuple(Address(n, e) for n, e in m["to_addrs"]),
        cc=tuple(Address(n, e) for n, e in m["cc_addrs"]),
        subject=m["subject"],
        date=m["sent_at"],
        message_id=m["message_id"],
        in_reply_to=m["in_reply_to"],
        references=tuple(m["references"]),
        has_attachments=m["has_attachments"],
        text_body=m.get("text_body", ""),
        html_body=m.get("html_body", ""),
        attachments=tuple(attachments),
    )


def _like(value: str) -> str:
    escaped = value.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


class InboxRepository:
    """Messages, attachments, cursors and POP3 UIDLs."""

    # messages -----------------------------------------------------------------------------

    def insert_messages(self, conn: sa.Connection, batch: Sequence[NewMessage]) -> list[int | None]:
        """Insert a batch (with attachments); None for a message whose dedupe key the account
        already has (or that repeats an earlier one of the batch). Three statements a batch."""
        known: set[tuple[int, str]] = set()
        for account_id in {new.account_id for new in batch}:
            keys = [new.dedupe_key for new in batch if new.account_id == account_id]
            found = conn.execute(
                sa.select(_m.dedupe_key).where(_m.account_id == account_id, _m.dedupe_key.in_(keys))
            )
            known.update((account_id, key) for key in found.scalars())
        fresh: list[NewMessage] = []
        for new in batch:
            if (new.account_id, new.dedupe_key) not in known:
                known.add((new.account_id, new.dedupe_key))
                fresh.append(new)
        ids: dict[tuple[int, str], int] = {}
        if fresh:
            # ON CONFLICT DO NOTHING still guards against a concurrent writer of the same key.
            rows = _INSERT_MESSAGE.execute(conn, [_message_row(new) for new in fresh])
            ids = {(r[1], r[2]): r[0] for r in rows}
            attachments = [
                (ids[(new.account_id, new.dedupe_key)], new.parsed.attachments)
                for new in fresh
                if new.parsed and new.parsed.attachments and (new.account_id, new.dedupe_key) in ids
            ]
            self._add_attachments(conn, attachments)
        out: list[int | None] = []
        for new in batch:
            new_id = ids.pop((new.account_id, new.dedupe_key), None)
            out.append(new_id)
        return out

    def replace_parsed(
        self, conn: sa.Connection, message_id: int, parsed: ParsedMessage | None, reason: str
    ) -> None:
        """Store a new parse result (re-parse): parsed view and attachments, or quarantine."""
        status = MessageStatus.PARSED if parsed else MessageStatus.QUARANTINED
        values = dict(zip(_PARSED_COLUMNS, _parsed_row(parsed), strict=True))
        values |= {"status": status.value, "quarantine_reason": reason}
        conn.execute(sa.update(inbox_messages).where(_m.id == message_id).values(**values))
        conn.execute(
            sa.delete(inbox_attachments).where(inbox_attachments.c.message_id == message_id)
        )
        if parsed:
            self._add_attachments(conn, [(message_id, parsed.attachments)])

    def _add_attachments(
        self, conn: sa.Connection, items: Sequence[tuple[int, Sequence[AttachmentInfo]]]
    ) -> None:
        _INSERT_ATTACHMENT.execute(
            conn,
            [
                (message_id, a.index, a.filename, a.content_type, a.size, a.content_id, a.inline)
                for message_id, attachments in items
                for a in attachments
            ],
        )

    def inline_raw(self, conn: sa.Connection, message_id: int) -> bytes | None:
        """The raw bytes kept in the row, or None when they are in the raw store's file."""
        found = conn.execute(sa.select(_m.raw_inline).where(_m.id == message_id)).scalar()
        return bytes(found) if found is not None else None

    def get(self, conn: sa.Connection, message_id: int) -> InboxMessage:
        columns = [c for c in inbox_messages.c if c.name != "raw_inline"]
        row = conn.execute(sa.select(*columns).where(_m.id == message_id)).first()
        if row is None:
            raise NotFound(f"message {message_id} does not exist")
        return _to_message(row, self.attachments(conn, message_id))

    def attachments(self, conn: sa.Connection, message_id: int) -> list[AttachmentInfo]:
        a = inbox_attachments.c
        rows = conn.execute(
            sa.select(inbox_attachments).where(a.message_id == message_id).order_by(a.part_index)
        )
        return [
            AttachmentInfo(r.part_index, r.filename, r.content_type, r.size, r.content_id, r.inline)
            for r in rows
        ]

    def search(
        self,
        conn: sa.Connection,
        query: InboxQuery,
        *,
        account_id: int | None,
        visible_team_ids: Collection[int] | None,
    ) -> tuple[list[InboxMessage], int]:
        """One page of messages, without bodies: of one account, or of every account whose team
        is in `visible_team_ids` or which is system-wide (None: every account)."""
        conds: list[Any] = []
        if account_id is not None:
            conds.append(_m.account_id == account_id)
        if visible_team_ids is not None:
            t = accounts.c.team_id
            visible = sa.select(accounts.c.id).where(
                sa.or_(t.is_(None), t.in_(list(visible_team_ids)))
            )
            conds.append(_m.account_id.in_(visible))
        if query.status is not None:
            conds.append(_m.status == query.status.value)
        if query.sender:
            pattern = _like(query.sender)
            conds.append(
                sa.or_(
                    sa.func.lower(_m.from_email).like(pattern, escape="\\"),
                    sa.func.lower(_m.from_name).like(pattern, escape="\\"),
                )
            )
        if query.subject:
            conds.append(sa.func.lower(_m.subject).like(_like(query.subject), escape="\\"))
        date_col = sa.func.coalesce(_m.sent_at, _m.fetched_at)
        if query.since is not None:
            conds.append(date_col >= query.since)
        if query.until is not None:
            conds.append(date_col < query.until)
        if query.has_attachments is not None:
            conds.append(_m.has_attachments.is_(query.has_attachments))
        where = sa.and_(sa.true(), *conds)
        total = conn.execute(sa.select(sa.func.count()).select_from(inbox_messages).where(where))
        col = date_col if query.sort is SortField.DATE else _SORT[query.sort]
        order = [col.desc(), _m.id.desc()] if query.descending else [col.asc(), _m.id.asc()]
        rows = conn.execute(
            sa.select(*_LIST_COLUMNS)
            .where(where)
            .order_by(*order)
            .limit(query.limit)
            .offset(query.offset)
        )
        return [_to_message(r) for r in rows], int(total.scalar_one())

    def count(self, conn: sa.Connection, account_id: int) -> int:
        stmt = sa.select(sa.func.count()).where(_m.account_id == account_id)
        return int(conn.execute(stmt).scalar_one())

    # IMAP cursors ---------------------------------------------------------------------------

    def cursors(self, conn: sa.Connection, account_id: int, folder: str) -> list[Cursor]:
        """The folder's cursors, most recently used first."""
        c = inbox_cursors.c
        rows = conn.execute(
            sa.select(inbox_cursors)
            .where(c.account_id == account_id, c.folder == folder)
            .order_by(c.updated_at.desc())
        )
        return [Cursor(r.folder, r.uidvalidity, r.last_uid, r.start_at) for r in rows]

    def save_cursor(
        self, conn: sa.Connection, account_id: int, cursor: Cursor, now: datetime
    ) -> None:
        """Create the cursor or move it forward (never backwards)."""
        c = inbox_cursors.c
        key = (
            (c.account_id == account_id)
            & (c.folder == cursor.folder)
            & (c.uidvalidity == cursor.uidvalidity)
        )
        found = conn.execute(sa.select(c.last_uid).where(key)).scalar()
        if found is None:
            conn.execute(
                sa.insert(inbox_cursors).values(
                    account_id=account_id,
                    folder=cursor.folder,
                    uidvalidity=cursor.uidvalidity,
                    last_uid=cursor.last_uid,
                    start_at=cursor.start_at,
                    updated_at=now,
                )
            )
        else:
            conn.execute(
                sa.update(inbox_cursors)
                .where(key)
                .values(last_uid=max(found, cursor.last_uid), updated_at=now)
            )

    # POP3 UIDLs -----------------------------------------------------------------------------

    def seen_uidls(self, conn: sa.Connection, account_id: int) -> dict[str, bool]:
        """Every UIDL seen for the account → whether it was imported (False: skipped)."""
        u = inbox_pop3_uidls.c
        rows = conn.execute(sa.select(u.uidl, u.imported).where(u.account_id == account_id))
        return {r.uidl: r.imported for r in rows}

    def add_uidls(
        self,
        conn: sa.Connection,
        account_id: int,
        uidls: Iterable[str],
        *,
        imported: bool,
        now: datetime,
    ) -> None:
        rows = [
            {"account_id": account_id, "uidl": u, "imported": imported, "seen_at": now}
            for u in uidls
        ]
        if rows:
            conn.execute(_insert_ignore(conn, inbox_pop3_uidls), rows)
