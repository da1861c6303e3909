"""Indexes for the accounts list: (status, name_key) and (team_id, name_key).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_accounts_status_name_key", "accounts", ["status", "name_key"])
    op.create_index("ix_accounts_team_id_name_key", "accounts", ["team_id", "name_key"])


def downgrade() -> None:
    op.drop_index("ix_accounts_team_id_name_key", table_name="accounts")
    op.drop_index("ix_accounts_status_name_key", table_name="accounts")
