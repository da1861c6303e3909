"""People, accounts, secrets, audit, comments, system log, checks and notifications."""

import sqlalchemy as sa

from postroom.storage.tables.base import metadata
from postroom.storage.types import JSON, UtcDateTime

teams = sa.Table(
    "teams",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("name_key", sa.String(120), nullable=False, unique=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

work_locations = sa.Table(
    "work_locations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("name_key", sa.String(120), nullable=False, unique=True),
    sa.Column("address", sa.String(500), nullable=False, server_default=""),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),  # stored lower-case
    sa.Column("name", sa.String(200), nullable=False, server_default=""),
    sa.Column("role", sa.String(20), nullable=False),  # admin | manager | member
    sa.Column("password_hash", sa.String(300), nullable=True),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column(
        "work_location_id",
        sa.Integer,
        sa.ForeignKey("work_locations.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

team_members = sa.Table(
    "team_members",
    metadata,
    sa.Column(
        "team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    ),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column("name", sa.String(120), nullable=False, server_default=""),
    sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256 hex
    sa.Column("prefix", sa.String(12), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("last_used_at", UtcDateTime, nullable=True),
    sa.Column("revoked_at", UtcDateTime, nullable=True),
)

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(120), nullable=False),
    sa.Column("name_key", sa.String(120), nullable=False, unique=True),  # case-insensitive unique
    sa.Column("email", sa.String(320), nullable=False),
    sa.Column("display_name", sa.String(200), nullable=False, server_default=""),
    sa.Column("label", sa.String(120), nullable=False, server_default=""),
    sa.Column("color", sa.String(20), nullable=False, server_default=""),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("team_id", sa.Integer, sa.ForeignKey("teams.id", ondelete="RESTRICT"), nullable=True),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("debug", sa.Boolean, nullable=False, server_default=sa.false()),
    # Default markers: the scope key (team id, or 0 for system-wide) while default, else NULL.
    # A unique index on a nullable column gives "at most one default per scope" on both databases.
    sa.Column("default_outgoing_scope", sa.Integer, nullable=True, unique=True),
    sa.Column("default_incoming_scope", sa.Integer, nullable=True, unique=True),
    sa.Column("signature_text", sa.Text, nullable=False, server_default=""),
    sa.Column("signature_html", sa.Text, nullable=False, server_default=""),
    sa.Column("letterhead_html", sa.Text, nullable=False, server_default=""),
    # Connection-check health.
    sa.Column("last_check_at", UtcDateTime, nullable=True),
    sa.Column("last_ok_at", UtcDateTime, nullable=True),
    sa.Column("failing_since", UtcDateTime, nullable=True),
    sa.Column("last_error", sa.Text, nullable=False, server_default=""),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(320), nullable=False, server_default=""),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("updated_by", sa.String(320), nullable=False, server_default=""),
    sa.Column("deleted_at", UtcDateTime, nullable=True),
    sa.Column("version", sa.Integer, nullable=False, server_default="1"),
    # The list page filters by status or team and sorts by name: these let it walk an index
    # instead of sorting every match (migration 0004).
    sa.Index("ix_accounts_status_name_key", "status", "name_key"),
    sa.Index("ix_accounts_team_id_name_key", "team_id", "name_key"),
)

account_outgoing = sa.Table(
    "account_outgoing",
    metadata,
    sa.Column(
        "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("transport", sa.String(20), nullable=False),
    sa.Column("host", sa.String(255), nullable=False, server_default=""),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("security", sa.String(20), nullable=False),
    sa.Column("verify_certificate", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("auth_mode", sa.String(20), nullable=False),
    sa.Column("username", sa.String(320), nullable=False, server_default=""),
    sa.Column("password_enc", sa.Text, nullable=True),
    sa.Column("from_address", sa.String(320), nullable=False, server_default=""),
    sa.Column("reply_to", sa.String(320), nullable=False, server_default=""),
    sa.Column("helo_name", sa.String(255), nullable=False, server_default=""),
    sa.Column("timeout_s", sa.Float, nullable=False, server_default="30"),
    sa.Column("send_mode", sa.String(20), nullable=False),
    sa.Column("max_messages_per_connection", sa.Integer, nullable=False, server_default="100"),
    sa.Column("max_connections", sa.Integer, nullable=False, server_default="2"),
    sa.Column("rate_limit_count", sa.Integer, nullable=True),
    sa.Column("rate_limit_period_s", sa.Integer, nullable=True),
    sa.Column(
        "failover_account_id",
        sa.Integer,
        sa.ForeignKey("accounts.id", ondelete="SET NULL"),
        nullable=True,
    ),
    sa.Column("sendmail_path", sa.String(500), nullable=False, server_default="/usr/sbin/sendmail"),
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("auth_failing_since", UtcDateTime, nullable=True),
)

account_incoming = sa.Table(
    "account_incoming",
    metadata,
    sa.Column(
        "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("protocol", sa.String(10), nullable=False),
    sa.Column("host", sa.String(255), nullable=False),
    sa.Column("port", sa.Integer, nullable=False),
    sa.Column("security", sa.String(20), nullable=False),
    sa.Column("verify_certificate", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("username", sa.String(320), nullable=False, server_default=""),
    sa.Column("password_enc", sa.Text, nullable=True),
    sa.Column("folders", JSON, nullable=False),
    sa.Column("keep_on_server", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("after_import", sa.String(20), nullable=False, server_default="keep"),
    sa.Column("move_to_folder", sa.String(255), nullable=False, server_default=""),
    sa.Column("fetch_since", UtcDateTime, nullable=True),
    sa.Column("fetch_interval_s", sa.Integer, nullable=False, server_default="300"),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    # Fetch scheduling and health (written by services/fetching).
    sa.Column("next_fetch_at", UtcDateTime, nullable=True),
    sa.Column("lease_owner", sa.String(120), nullable=True),
    sa.Column("lease_until", UtcDateTime, nullable=True),
    sa.Column("last_fetch_at", UtcDateTime, nullable=True),
    sa.Column("last_fetch_ok_at", UtcDateTime, nullable=True),
    sa.Column("fetch_failing_since", UtcDateTime, nullable=True),
    sa.Column("consecutive_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("consecutive_auth_failures", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_fetch_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_fetch_error", sa.Text, nullable=False, server_default=""),
)

account_work_locations = sa.Table(
    "account_work_locations",
    metadata,
    sa.Column(
        "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "work_location_id",
        sa.Integer,
        sa.ForeignKey("work_locations.id", ondelete="CASCADE"),
        primary_key=True,
    ),
)

credentials = sa.Table(
    "credentials",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    sa.Column(
        "account_id", sa.Integer, sa.ForeignKey("accounts.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("username", sa.String(320), nullable=False),
    sa.Column("password_enc", sa.Text, nullable=False),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.UniqueConstraint("user_id", "account_id", name="uq_credentials_user_account"),
)

audit_entries = sa.Table(
    "audit_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False, index=True),
    sa.Column("actor", sa.String(320), nullable=False),
    sa.Column("action", sa.String(60), nullable=False),
    sa.Column("entity_type", sa.String(40), nullable=False),
    sa.Column("entity_id", sa.Integer, nullable=True),
    sa.Column("account_id", sa.Integer, nullable=True, index=True),  # no FK: audit outlives rows
    sa.Column("changes", JSON, nullable=False),  # {field: [old, new]}, secrets masked
)

comments = sa.Table(
    "comments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "account_id",
        sa.Integer,
        sa.ForeignKey("accounts.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("author", sa.String(320), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
)

system_log = sa.Table(
    "system_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", UtcDateTime, nullable=False, index=True),
    sa.Column("source", sa.String(40), nullable=False, index=True),
    sa.Column("level", sa.String(10), nullable=False),
    sa.Column("action", sa.String(60), nullable=False, server_default=""),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("account_id", sa.Integer, nullable=True, index=True),
    sa.Column("user", sa.String(320), nullable=False, server_default=""),
    sa.Column("transcript", JSON, nullable=True),
)

checks = sa.Table(
    "checks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account_id", sa.Integer, nullable=True, index=True),
    sa.Column("protocol", sa.String(10), nullable=False),
    sa.Column("ok", sa.Boolean, nullable=False),
    sa.Column("error_class", sa.String(40), nullable=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("created_by", sa.String(320), nullable=False, server_default=""),
    sa.Column("result", JSON, nullable=False),  # CheckResult.to_dict(), transcript redacted
)

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("level", sa.String(10), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("account_id", sa.Integer, nullable=True),
    sa.Column("read_at", UtcDateTime, nullable=True),
)

settings_kv = sa.Table(
    "settings_kv",
    metadata,
    sa.Column("key", sa.String(120), primary_key=True),
    sa.Column("value", JSON, nullable=False),
)
