"""Account schemas: what a client may send (AccountCreate / AccountUpdate with OutgoingIn and
IncomingIn) and what it gets back (AccountPublic with OutgoingPublic and IncomingPublic).

The domain validates the rules (required hosts, ranges, addresses); these models give the
earlier, per-field 422 for types, lengths, unknown fields and line breaks in header-like fields.
Passwords come in as SecretStr (masked in any repr) and never go out: `has_password` instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, SecretStr

from postroom.api.schemas.common import (
    AwareInstant,
    HeaderStr,
    PagePublic,
    Public,
    Strict,
    reveal,
)
from postroom.domain.accounts import (
    Account,
    AccountDraft,
    AccountStatus,
    AfterImport,
    AuthMode,
    IncomingDraft,
    IncomingProtocol,
    OutgoingDraft,
    Security,
    SendMode,
    Transport,
)

INT32_MAX = 2**31 - 1  # PostgreSQL INTEGER: larger values would fail in the database, not here

Id = Annotated[int, Field(ge=1, le=INT32_MAX)]
Count = Annotated[int, Field(ge=0, le=INT32_MAX)]  # the domain checks the useful ranges
Text = Annotated[str, Field(max_length=100_000)]
Name = Annotated[HeaderStr, Field(max_length=120)]
DisplayName = Annotated[HeaderStr, Field(max_length=200)]
Address = Annotated[HeaderStr, Field(max_length=320)]
Host = Annotated[HeaderStr, Field(max_length=255)]


class OutgoingIn(Strict):
    """The outgoing part. `port` left out or null: the conventional port for `security`."""

    transport: Transport = Transport.SMTP
    host: Host = ""
    port: int | None = None
    security: Security = Security.STARTTLS
    verify_certificate: bool = True
    auth_mode: AuthMode = AuthMode.CENTRAL
    username: Address = ""
    password: SecretStr | None = Field(default=None, description="empty or left out: keep")
    from_address: Address = ""
    reply_to: Address = ""
    helo_name: Host = ""
    timeout_s: float = 30.0
    send_mode: SendMode = SendMode.QUEUED
    max_messages_per_connection: Count = 100
    max_connections: Count = 2
    rate_limit_count: Count | None = None
    rate_limit_period_s: Count | None = None
    failover_account_id: Id | None = None
    sendmail_path: Annotated[str, Field(max_length=500)] = "/usr/sbin/sendmail"

    def to_draft(self) -> OutgoingDraft:
        return OutgoingDraft(**reveal(self.model_dump()))


class IncomingIn(Strict):
    """The incoming part. `port` left out or null: the conventional port for `security`."""

    protocol: IncomingProtocol = IncomingProtocol.IMAP
    host: Host = ""
    port: int | None = None
    security: Security = Security.SSL
    verify_certificate: bool = True
    username: Address = ""
    password: SecretStr | None = Field(default=None, description="empty or left out: keep")
    folders: Annotated[list[Annotated[HeaderStr, Field(max_length=255)]], Field(max_length=100)] = [
        "INBOX"
    ]
    keep_on_server: bool = True
    after_import: AfterImport = AfterImport.KEEP
    move_to_folder: Host = ""
    fetch_since: AwareInstant | None = None
    fetch_interval_s: Count = 300
    enabled: bool = True

    def to_draft(self) -> IncomingDraft:
        data = reveal(self.model_dump())
        return IncomingDraft(**{**data, "folders": tuple(data["folders"])})


class _AccountFields(Strict):
    display_name: DisplayName = ""
    label: Name = ""
    color: Annotated[str, Field(max_length=20)] = ""
    description: Text = ""
    team_id: Id | None = Field(default=None, description="null: system-wide")
    debug: bool = False
    signature_text: Text = ""
    signature_html: Text = ""
    letterhead_html: Text = ""
    work_location_ids: Annotated[list[Id], Field(max_length=1000)] = []


class AccountCreate(_AccountFields):
    name: Name
    email: Address
    outgoing: OutgoingIn | None = None
    incoming: IncomingIn | None = None

    def to_draft(self) -> AccountDraft:
        data = self.model_dump(exclude={"outgoing", "incoming"})
        return AccountDraft(
            **{**data, "work_location_ids": tuple(data["work_location_ids"])},
            outgoing=self.outgoing.to_draft() if self.outgoing else None,
            incoming=self.incoming.to_draft() if self.incoming else None,
        )


class AccountUpdate(_AccountFields):
    """A PATCH: only the fields sent are changed; nested parts are merged field by field, and
    `outgoing` / `incoming` sent as null remove that part. The defaults below are never applied."""

    name: Name = ""
    email: Address = ""
    outgoing: OutgoingIn | None = None
    incoming: IncomingIn | None = None

    def changes(self) -> dict[str, Any]:
        """The fields that were sent, nested, as AccountService.update takes them."""
        return reveal(self.model_dump(exclude_unset=True))


class OutgoingPublic(Public):
    transport: Transport
    host: str
    port: int
    security: Security
    verify_certificate: bool
    auth_mode: AuthMode
    username: str
    has_password: bool
    from_address: str
    reply_to: str
    helo_name: str
    timeout_s: float
    send_mode: SendMode
    max_messages_per_connection: int
    max_connections: int
    rate_limit_count: int | None
    rate_limit_period_s: int | None
    failover_account_id: int | None
    sendmail_path: str
    paused: bool


class IncomingPublic(Public):
    protocol: IncomingProtocol
    host: str
    port: int
    security: Security
    verify_certificate: bool
    username: str
    has_password: bool
    folders: list[str]
    keep_on_server: bool
    after_import: AfterImport
    move_to_folder: str
    fetch_since: datetime | None
    fetch_interval_s: int
    enabled: bool


class HealthPublic(Public):
    """Result of the latest connection check (all null: never checked)."""

    last_check_at: datetime | None = None
    last_ok_at: datetime | None = None
    failing_since: datetime | None = None
    last_error: str = ""


class AccountPublic(Public):
    id: int
    name: str
    email: str
    status: AccountStatus
    display_name: str
    label: str
    color: str
    description: str
    team_id: int | None
    debug: bool
    is_default_outgoing: bool
    is_default_incoming: bool
    signature_text: str
    signature_html: str
    letterhead_html: str
    outgoing: OutgoingPublic | None
    incoming: IncomingPublic | None
    work_location_ids: list[int]
    created_at: datetime | None
    created_by: str
    updated_at: datetime | None
    updated_by: str
    warnings: list[str] = Field(description="e.g. certificate verification off (fast mode)")
    health: HealthPublic

    @classmethod
    def of(cls, account: Account, health: Mapping[str, Any] | None) -> AccountPublic:
        """Render `account` with its health (None: never checked)."""
        data = {name: getattr(account, name) for name in cls.model_fields if name != "health"}
        known = HealthPublic.model_fields
        data["health"] = {k: v for k, v in (health or {}).items() if k in known}
        return cls.model_validate(data, from_attributes=True)


AccountPage = PagePublic[AccountPublic]
