"""Inbox schema: fetched messages, cursors, attachments, quarantine (issue 5).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

from postroom.storage.types import JSON, UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbox_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=1000), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("quarantine_reason", sa.Text(), server_default="", nullable=False),
        sa.Column("folder", sa.String(length=255), server_default="", nullable=False),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=True),
        sa.Column("pop3_uidl", sa.String(length=255), nullable=True),
        sa.Column("flags", JSON, nullable=False),
        sa.Column("internaldate", UtcDateTime(), nullable=True),
        sa.Column("raw_sha256", sa.String(length=64), nullable=False),
        sa.Column("raw_inline", sa.LargeBinary(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("fetched_at", UtcDateTime(), nullable=False),
        sa.Column("from_name", sa.String(length=500), server_default="", nullable=False),
        sa.Column("from_email", sa.String(length=500), server_default="", nullable=False),
        sa.Column("to_addrs", JSON, nullable=False),
        sa.Column("cc_addrs", JSON, nullable=False),
        sa.Column("reply_to_addrs", JSON, nullable=False),
        sa.Column("subject", sa.Text(), server_default="", nullable=False),
        sa.Column("sent_at", UtcDateTime(), nullable=True),
        sa.Column("message_id", sa.String(length=1000), nullable=True),
        sa.Column("in_reply_to", sa.String(length=1000), server_default="", nullable=False),
        sa.Column("references", JSON, nullable=False),
        sa.Column("text_body", sa.Text(), server_default="", nullable=False),
        sa.Column("html_body", sa.Text(), server_default="", nullable=False),
        sa.Column("has_attachments", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_inbox_messages_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_messages")),
        sa.UniqueConstraint("account_id", "dedupe_key", name="uq_inbox_messages_account_dedupe"),
    )
    op.create_index(
        "ix_inbox_messages_account_sent", "inbox_messages", ["account_id", "status", "sent_at"]
    )
    op.create_index(
        "ix_inbox_messages_account_fetched",
        "inbox_messages",
        ["account_id", "status", "fetched_at"],
    )
    op.create_table(
        "inbox_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("part_index", sa.Integer(), nullable=False),
        sa.Column("filename", sa.String(length=500), server_default="", nullable=False),
        sa.Column("content_type", sa.String(length=255), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_id", sa.String(length=500), server_default="", nullable=False),
        sa.Column("inline", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["inbox_messages.id"],
            name=op.f("fk_inbox_attachments_message_id_inbox_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_attachments")),
    )
    op.create_index(op.f("ix_inbox_attachments_message_id"), "inbox_attachments", ["message_id"])
    op.create_table(
        "inbox_cursors",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("folder", sa.String(length=255), nullable=False),
        sa.Column("uidvalidity", sa.BigInteger(), nullable=False),
        sa.Column("last_uid", sa.BigInteger(), nullable=False),
        sa.Column("start_at", UtcDateTime(), nullable=True),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_inbox_cursors_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "folder", "uidvalidity", name=op.f("pk_inbox_cursors")
        ),
    )
    op.create_table(
        "inbox_pop3_uidls",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("uidl", sa.String(length=255), nullable=False),
        sa.Column("imported", sa.Boolean(), nullable=False),
        sa.Column("seen_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_inbox_pop3_uidls_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", "uidl", name=op.f("pk_inbox_pop3_uidls")),
    )


def downgrade() -> None:
    op.drop_table("inbox_pop3_uidls")
    op.drop_table("inbox_cursors")
    op.drop_index(op.f("ix_inbox_attachments_message_id"), table_name="inbox_attachments")
    op.drop_table("inbox_attachments")
    op.drop_index("ix_inbox_messages_account_fetched", table_name="inbox_messages")
    op.drop_index("ix_inbox_messages_account_sent", table_name="inbox_messages")
    op.drop_table("inbox_messages")
