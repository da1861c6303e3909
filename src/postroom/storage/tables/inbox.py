"""Fetched messages, cursors, attachments and quarantine.

Owned by the inbound work (issue 5); its migration is versions/0003_inbox.py.

The raw bytes of small messages live in `raw_inline`; larger ones in the raw store
(storage/rawstore.py), addressed by `raw_sha256`, and a row is written only after its file is
safely on disk. Quarantined messages are rows with
status='quarantined' and a reason, so they are listed, re-parsed and downloaded like any other.
"""

import sqlalchemy as sa

from postroom.storage.tables.base import metadata
from postroom.storage.types import JSON, UtcDateTime

inbox_messages = sa.Table(
    "inbox_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    # Per-account identity: "mid:<normalised Message-ID>" or "sha256:<raw hash>".
    sa.Column("dedupe_key", sa.String(1000), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),  # parsed | quarantined
    sa.Column("quarantine_reason", sa.Text, nullable=False, server_default=""),
    # Where it came from on the server.
    sa.Column("folder", sa.String(255), nullable=False, server_default=""),
    sa.Column("uid", sa.BigInteger, nullable=True),
    sa.Column("uidvalidity", sa.BigInteger, nullable=True),
    sa.Column("pop3_uidl", sa.String(255), nullable=True),
    sa.Column("flags", JSON, nullable=False),
    sa.Column("internaldate", UtcDateTime, nullable=True),
    # The raw message.
    sa.Column("raw_sha256", sa.String(64), nullable=False),
    # Small messages are kept right here (one file per mail costs more than the mail); larger
    # ones in the raw store's file named by raw_sha256.
    sa.Column("raw_inline", sa.LargeBinary, nullable=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("fetched_at", UtcDateTime, nullable=False),
    # The parsed view (empty when quarantined).
    sa.Column("from_name", sa.String(500), nullable=False, server_default=""),
    sa.Column("from_email", sa.String(500), nullable=False, server_default=""),
    sa.Column("to_addrs", JSON, nullable=False),  # [[name, email], ...]
    sa.Column("cc_addrs", JSON, nullable=False),
    sa.Column("reply_to_addrs", JSON, nullable=False),
    sa.Column("subject", sa.Text, nullable=False, server_default=""),
    sa.Column("sent_at", UtcDateTime, nullable=True),  # the Date header
    sa.Column("message_id", sa.String(1000), nullable=True),
    sa.Column("in_reply_to", sa.String(1000), nullable=False, server_default=""),
    sa.Column("references", JSON, nullable=False),
    sa.Column("text_body", sa.Text, nullable=False, server_default=""),
    sa.Column("html_body", sa.Text, nullable=False, server_default=""),  # sanitised with nh3
    sa.Column("has_attachments", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("account_id", "dedupe_key", name="uq_inbox_messages_account_dedupe"),
    sa.Index("ix_inbox_messages_account_sent", "account_id", "status", "sent_at"),
    sa.Index("ix_inbox_messages_account_fetched", "account_id", "status", "fetched_at"),
)

inbox_attachments = sa.Table(
    "inbox_attachments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "message_id",
        sa.Integer,
        sa.ForeignKey("inbox_messages.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("part_index", sa.Integer, nullable=False),  # position in the MIME walk
    sa.Column("filename", sa.String(500), nullable=False, server_default=""),
    sa.Column("content_type", sa.String(255), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("content_id", sa.String(500), nullable=False, server_default=""),
    sa.Column("inline", sa.Boolean, nullable=False, server_default=sa.false()),
)

inbox_cursors = sa.Table(
    "inbox_cursors",
    metadata,
    sa.Column(
        "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("folder", sa.String(255), primary_key=True),
    sa.Column("uidvalidity", sa.BigInteger, primary_key=True),
    sa.Column("last_uid", sa.BigInteger, nullable=False),
    sa.Column("start_at", UtcDateTime, nullable=True),
    sa.Column("updated_at", UtcDateTime, nullable=False),
)

# POP3 has no UIDVALIDITY: every UIDL ever seen (imported, or present at the first fetch and
# therefore skipped) is remembered so that it is never imported twice.
inbox_pop3_uidls = sa.Table(
    "inbox_pop3_uidls",
    metadata,
    sa.Column(
        "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("uidl", sa.String(255), primary_key=True),
    sa.Column("imported", sa.Boolean, nullable=False),
    sa.Column("seen_at", UtcDateTime, nullable=False),
)
