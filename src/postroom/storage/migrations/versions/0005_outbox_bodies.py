"""Outgoing raw bytes move from outbox_messages to outbox_bodies (issue 4 benchmark).

The queue row is rewritten on every claim and result; with the 2 KB body inline, the database
rewrote the body each time too.

On SQLite the column is dropped and added in place (`recreate="never"`: native ALTER TABLE,
SQLite ≥ 3.35). Batch mode's copy-and-move would DROP the old table, and with foreign keys on
(they are, on every connection, and the PRAGMA cannot change inside the migration's
transaction) that DROP cascades into the recipients, attempts and bodies of every message.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_bodies",
        sa.Column("message_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["message_id"],
            ["outbox_messages.id"],
            name=op.f("fk_outbox_bodies_message_id_outbox_messages"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("message_id", name=op.f("pk_outbox_bodies")),
    )
    op.execute("INSERT INTO outbox_bodies (message_id, raw) SELECT id, raw FROM outbox_messages")
    with op.batch_alter_table("outbox_messages", recreate="never") as batch_op:
        batch_op.drop_column("raw")


def downgrade() -> None:
    # Added NOT NULL with a placeholder default (SQLite refuses NOT NULL without one), filled
    # from the bodies, then the default is dropped where that needs no table copy (PostgreSQL).
    with op.batch_alter_table("outbox_messages", recreate="never") as batch_op:
        batch_op.add_column(
            sa.Column("raw", sa.LargeBinary(), nullable=False, server_default=sa.text("''"))
        )
    op.execute(
        "UPDATE outbox_messages SET raw = (SELECT b.raw FROM outbox_bodies b "
        "WHERE b.message_id = outbox_messages.id)"
    )
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("outbox_messages", "raw", server_default=None)
    op.drop_table("outbox_bodies")
