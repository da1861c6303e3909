"""Outgoing messages, their recipients and attempts, and worker heartbeats.

Owned by the outbox/delivery work (issue 4); its migrations are versions/0002_outbox.py and
0005_outbox_bodies.py.
"""

import sqlalchemy as sa

from postroom.storage.tables.base import metadata
from postroom.storage.types import JSON, UtcDateTime

outbox_messages = sa.Table(
    "outbox_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # NULLs never collide in a unique index, on both databases: keyless submits are not limited.
    sa.Column("idempotency_key", sa.String(200), nullable=True, unique=True),
    # Fixed at enqueue; every (re-)send uses these exact bytes, so receivers can de-duplicate.
    sa.Column("message_id", sa.String(250), nullable=False, unique=True),
    sa.Column(
        "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="RESTRICT"), nullable=False
    ),
    sa.Column(
        "sender_user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL"), nullable=True
    ),
    sa.Column("created_by", sa.String(320), nullable=False, server_default=""),
    sa.Column("envelope_from", sa.String(320), nullable=False),
    sa.Column("subject", sa.Text, nullable=False, server_default=""),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("mode", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, server_default="5"),
    sa.Column("next_attempt_at", UtcDateTime, nullable=True),
    sa.Column("lease_owner", sa.String(120), nullable=True),
    sa.Column("lease_until", UtcDateTime, nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("sent_at", UtcDateTime, nullable=True),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    # The claim scans (status, next_attempt_at) in priority order; journals filter by account.
    sa.Index("ix_outbox_messages_claim", "status", "priority", "next_attempt_at"),
    sa.Index("ix_outbox_messages_account_status", "account_id", "status"),
    sa.Index("ix_outbox_messages_sent_at", "account_id", "sent_at"),
)

# The raw bytes (fixed at enqueue, never updated) in their own table: the queue row changes on
# every claim and result, and a 2 KB value in it would make the database rewrite it each time.
outbox_bodies = sa.Table(
    "outbox_bodies",
    metadata,
    sa.Column(
        "message_id",
        sa.Integer,
        sa.ForeignKey("outbox_messages.id", ondelete="CASCADE"),
        primary_key=True,
        autoincrement=False,
    ),
    sa.Column("raw", sa.LargeBinary, nullable=False),
)

outbox_recipients = sa.Table(
    "outbox_recipients",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "message_id",
        sa.Integer,
        sa.ForeignKey("outbox_messages.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("address", sa.String(320), nullable=False),
    sa.Column("kind", sa.String(5), nullable=False),  # to | cc | bcc
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("code", sa.Integer, nullable=True),
    sa.Column("enhanced", sa.String(20), nullable=False, server_default=""),
    sa.Column("text", sa.Text, nullable=False, server_default=""),
    sa.Column("updated_at", UtcDateTime, nullable=True),
)

outbox_attempts = sa.Table(
    "outbox_attempts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "message_id",
        sa.Integer,
        sa.ForeignKey("outbox_messages.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("account_id", sa.Integer, nullable=False),  # the account actually used
    sa.Column("failover_from", sa.Integer, nullable=True),
    sa.Column("worker", sa.String(120), nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("outcome", sa.String(20), nullable=False),  # sent | deferred | failed | unknown
    sa.Column("code", sa.Integer, nullable=True),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("transcript", JSON, nullable=True),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("hostname", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=False),
    sa.Column("started_at", UtcDateTime, nullable=False),
    sa.Column("heartbeat_at", UtcDateTime, nullable=False),
    sa.Column("stopped_at", UtcDateTime, nullable=True),
    sa.Column("delivered", sa.Integer, nullable=False, server_default="0"),
)
