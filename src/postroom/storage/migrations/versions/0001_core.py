"""Core schema: people, accounts and their parts, secrets, audit, comments, log, checks.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Text
from sqlalchemy.dialects import postgresql

import postroom.storage.types

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:

    op.create_table(
        "audit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", postroom.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=320), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("entity_type", sa.String(length=40), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=True),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column(
            "changes",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_entries")),
    )
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_entries_account_id"), ["account_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_audit_entries_at"), ["at"], unique=False)

    op.create_table(
        "checks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("protocol", sa.String(length=10), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("error_class", sa.String(length=40), nullable=True),
        sa.Column("created_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), server_default="", nullable=False),
        sa.Column(
            "result",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_checks")),
    )
    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_checks_account_id"), ["account_id"], unique=False)

    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("read_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
    )
    op.create_table(
        "settings_kv",
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column(
            "value",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_settings_kv")),
    )
    op.create_table(
        "system_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("source", sa.String(length=40), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("action", sa.String(length=60), server_default="", nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=True),
        sa.Column("user", sa.String(length=320), server_default="", nullable=False),
        sa.Column(
            "transcript",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=True,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_log")),
    )
    with op.batch_alter_table("system_log", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_system_log_account_id"), ["account_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_system_log_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_system_log_source"), ["source"], unique=False)

    op.create_table(
        "teams",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("name_key", sa.String(length=120), nullable=False),
        sa.Column("created_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("name_key", name=op.f("uq_teams_name_key")),
    )
    op.create_table(
        "work_locations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("name_key", sa.String(length=120), nullable=False),
        sa.Column("address", sa.String(length=500), server_default="", nullable=False),
        sa.Column("created_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_work_locations")),
        sa.UniqueConstraint("name_key", name=op.f("uq_work_locations_name_key")),
    )
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("name_key", sa.String(length=120), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("display_name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("label", sa.String(length=120), server_default="", nullable=False),
        sa.Column("color", sa.String(length=20), server_default="", nullable=False),
        sa.Column("description", sa.Text(), server_default="", nullable=False),
        sa.Column("team_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("debug", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("default_outgoing_scope", sa.Integer(), nullable=True),
        sa.Column("default_incoming_scope", sa.Integer(), nullable=True),
        sa.Column("signature_text", sa.Text(), server_default="", nullable=False),
        sa.Column("signature_html", sa.Text(), server_default="", nullable=False),
        sa.Column("letterhead_html", sa.Text(), server_default="", nullable=False),
        sa.Column(
            "last_check_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_ok_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "failing_since", postroom.storage.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("last_error", sa.Text(), server_default="", nullable=False),
        sa.Column("created_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=320), server_default="", nullable=False),
        sa.Column("updated_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=320), server_default="", nullable=False),
        sa.Column("deleted_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_accounts_team_id_teams"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_accounts")),
        sa.UniqueConstraint(
            "default_incoming_scope", name=op.f("uq_accounts_default_incoming_scope")
        ),
        sa.UniqueConstraint(
            "default_outgoing_scope", name=op.f("uq_accounts_default_outgoing_scope")
        ),
        sa.UniqueConstraint("name_key", name=op.f("uq_accounts_name_key")),
    )
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_accounts_status"), ["status"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), server_default="", nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.String(length=300), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("work_location_id", sa.Integer(), nullable=True),
        sa.Column("created_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["work_location_id"],
            ["work_locations.id"],
            name=op.f("fk_users_work_location_id_work_locations"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
    )
    op.create_table(
        "account_incoming",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("protocol", sa.String(length=10), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("security", sa.String(length=20), nullable=False),
        sa.Column("verify_certificate", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("username", sa.String(length=320), server_default="", nullable=False),
        sa.Column("password_enc", sa.Text(), nullable=True),
        sa.Column(
            "folders",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("keep_on_server", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("after_import", sa.String(length=20), server_default="keep", nullable=False),
        sa.Column("move_to_folder", sa.String(length=255), server_default="", nullable=False),
        sa.Column("fetch_since", postroom.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("fetch_interval_s", sa.Integer(), server_default="300", nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column(
            "next_fetch_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("lease_owner", sa.String(length=120), nullable=True),
        sa.Column("lease_until", postroom.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column(
            "last_fetch_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "last_fetch_ok_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column(
            "fetch_failing_since", postroom.storage.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.Column("consecutive_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("consecutive_auth_failures", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_fetch_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_fetch_error", sa.Text(), server_default="", nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_incoming_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_incoming")),
    )
    op.create_table(
        "account_outgoing",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("transport", sa.String(length=20), nullable=False),
        sa.Column("host", sa.String(length=255), server_default="", nullable=False),
        sa.Column("port", sa.Integer(), nullable=False),
        sa.Column("security", sa.String(length=20), nullable=False),
        sa.Column("verify_certificate", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("auth_mode", sa.String(length=20), nullable=False),
        sa.Column("username", sa.String(length=320), server_default="", nullable=False),
        sa.Column("password_enc", sa.Text(), nullable=True),
        sa.Column("from_address", sa.String(length=320), server_default="", nullable=False),
        sa.Column("reply_to", sa.String(length=320), server_default="", nullable=False),
        sa.Column("helo_name", sa.String(length=255), server_default="", nullable=False),
        sa.Column("timeout_s", sa.Float(), server_default="30", nullable=False),
        sa.Column("send_mode", sa.String(length=20), nullable=False),
        sa.Column(
            "max_messages_per_connection", sa.Integer(), server_default="100", nullable=False
        ),
        sa.Column("max_connections", sa.Integer(), server_default="2", nullable=False),
        sa.Column("rate_limit_count", sa.Integer(), nullable=True),
        sa.Column("rate_limit_period_s", sa.Integer(), nullable=True),
        sa.Column("failover_account_id", sa.Integer(), nullable=True),
        sa.Column(
            "sendmail_path",
            sa.String(length=500),
            server_default="/usr/sbin/sendmail",
            nullable=False,
        ),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column(
            "auth_failing_since", postroom.storage.types.UtcDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_outgoing_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["failover_account_id"],
            ["accounts.id"],
            name=op.f("fk_account_outgoing_failover_account_id_accounts"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_account_outgoing")),
    )
    op.create_table(
        "account_work_locations",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("work_location_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_account_work_locations_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["work_location_id"],
            ["work_locations.id"],
            name=op.f("fk_account_work_locations_work_location_id_work_locations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "account_id", "work_location_id", name=op.f("pk_account_work_locations")
        ),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=120), server_default="", nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.Column("last_used_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    op.create_table(
        "comments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("author", sa.String(length=320), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_comments_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_comments")),
    )
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_comments_account_id"), ["account_id"], unique=False)

    op.create_table(
        "credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=320), nullable=False),
        sa.Column("password_enc", sa.Text(), nullable=False),
        sa.Column("updated_at", postroom.storage.types.UtcDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["accounts.id"],
            name=op.f("fk_credentials_account_id_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_credentials_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credentials")),
        sa.UniqueConstraint("user_id", "account_id", name="uq_credentials_user_account"),
    )
    op.create_table(
        "team_members",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_members_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_team_members_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_team_members")),
    )


def downgrade() -> None:

    op.drop_table("team_members")
    op.drop_table("credentials")
    with op.batch_alter_table("comments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_comments_account_id"))

    op.drop_table("comments")
    op.drop_table("api_tokens")
    op.drop_table("account_work_locations")
    op.drop_table("account_outgoing")
    op.drop_table("account_incoming")
    op.drop_table("users")
    with op.batch_alter_table("accounts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_accounts_status"))

    op.drop_table("accounts")
    op.drop_table("work_locations")
    op.drop_table("teams")
    with op.batch_alter_table("system_log", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_system_log_source"))
        batch_op.drop_index(batch_op.f("ix_system_log_created_at"))
        batch_op.drop_index(batch_op.f("ix_system_log_account_id"))

    op.drop_table("system_log")
    op.drop_table("settings_kv")
    op.drop_table("notifications")
    with op.batch_alter_table("checks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_checks_account_id"))

    op.drop_table("checks")
    with op.batch_alter_table("audit_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_entries_at"))
        batch_op.drop_index(batch_op.f("ix_audit_entries_account_id"))

    op.drop_table("audit_entries")
