"""The account: one record with an optional outgoing part and an optional incoming part.

Rules here are pure: lifecycle transitions, port defaults by security, and which fields of a
part are secrets. Storage and services build on these; nothing here touches I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum


class AccountStatus(StrEnum):
    ACTIVE = "active"
    INACTIVE = "inactive"
    DELETED = "deleted"


class Transport(StrEnum):
    SMTP = "smtp"
    SENDMAIL = "sendmail"


class IncomingProtocol(StrEnum):
    IMAP = "imap"
    POP3 = "pop3"


class Security(StrEnum):
    """How the connection is protected: plaintext, implicit TLS, or upgraded with STARTTLS."""

    NONE = "none"
    SSL = "ssl"
    STARTTLS = "starttls"


class AuthMode(StrEnum):
    NONE = "none"
    CENTRAL = "central"
    PER_EMPLOYEE = "per_employee"


class SendMode(StrEnum):
    IMMEDIATE = "immediate"
    QUEUED = "queued"


class AfterImport(StrEnum):
    """What happens to a message on the server once it is stored (IMAP; POP3 knows keep/delete)."""

    KEEP = "keep"
    MARK_SEEN = "mark_seen"
    MOVE = "move"
    DELETE = "delete"


# Lifecycle: active ⇄ inactive, either → deleted (soft), deleted → inactive (restore).
# A restored account comes back inactive so that nothing starts sending or fetching by surprise.
TRANSITIONS: dict[tuple[AccountStatus, str], AccountStatus] = {
    (AccountStatus.INACTIVE, "activate"): AccountStatus.ACTIVE,
    (AccountStatus.ACTIVE, "deactivate"): AccountStatus.INACTIVE,
    (AccountStatus.ACTIVE, "delete"): AccountStatus.DELETED,
    (AccountStatus.INACTIVE, "delete"): AccountStatus.DELETED,
    (AccountStatus.DELETED, "restore"): AccountStatus.INACTIVE,
}


def next_status(current: AccountStatus, action: str) -> AccountStatus | None:
    """The status after `action`, or None when the transition is not allowed."""
    return TRANSITIONS.get((current, action))


_SMTP_PORTS = {Security.NONE: 25, Security.STARTTLS: 587, Security.SSL: 465}
_IMAP_PORTS = {Security.NONE: 143, Security.STARTTLS: 143, Security.SSL: 993}
_POP3_PORTS = {Security.NONE: 110, Security.STARTTLS: 110, Security.SSL: 995}


def default_port(protocol: str, security: Security) -> int:
    """The conventional port for `protocol` ('smtp', 'imap', 'pop3') under `security`."""
    table = {"smtp": _SMTP_PORTS, "imap": _IMAP_PORTS, "pop3": _POP3_PORTS}[protocol]
    return table[security]


@dataclass(frozen=True, slots=True)
class Outgoing:
    """The outgoing part of an account, as the services see it (password decrypted on demand)."""

    transport: Transport = Transport.SMTP
    host: str = ""
    port: int = 25
    security: Security = Security.STARTTLS
    verify_certificate: bool = True
    auth_mode: AuthMode = AuthMode.CENTRAL
    username: str = ""
    has_password: bool = False
    from_address: str = ""
    reply_to: str = ""
    helo_name: str = ""
    timeout_s: float = 30.0
    send_mode: SendMode = SendMode.QUEUED
    max_messages_per_connection: int = 100
    max_connections: int = 2
    rate_limit_count: int | None = None
    rate_limit_period_s: int | None = None
    failover_account_id: int | None = None
    sendmail_path: str = "/usr/sbin/sendmail"
    paused: bool = False


@dataclass(frozen=True, slots=True)
class Incoming:
    """The incoming part of an account."""

    protocol: IncomingProtocol = IncomingProtocol.IMAP
    host: str = ""
    port: int = 993
    security: Security = Security.SSL
    verify_certificate: bool = True
    username: str = ""
    has_password: bool = False
    folders: tuple[str, ...] = ("INBOX",)
    keep_on_server: bool = True
    after_import: AfterImport = AfterImport.KEEP
    move_to_folder: str = ""
    fetch_since: datetime | None = None
    fetch_interval_s: int = 300
    enabled: bool = True


@dataclass(frozen=True, slots=True)
class Account:
    """A mail account as read from storage. Secrets are never part of it: see has_password."""

    id: int
    name: str
    email: str
    status: AccountStatus
    display_name: str = ""
    label: str = ""
    color: str = ""
    description: str = ""
    team_id: int | None = None
    debug: bool = False
    is_default_outgoing: bool = False
    is_default_incoming: bool = False
    signature_text: str = ""
    signature_html: str = ""
    letterhead_html: str = ""
    outgoing: Outgoing | None = None
    incoming: Incoming | None = None
    work_location_ids: tuple[int, ...] = ()
    created_at: datetime | None = None
    created_by: str = ""
    updated_at: datetime | None = None
    updated_by: str = ""
    warnings: tuple[str, ...] = field(default=())


# ---------------------------------------------------------------------------------------------
# Drafts: what a caller asks to store. Validated here, purely; storage writes them as given.


@dataclass(frozen=True, slots=True)
class OutgoingDraft:
    transport: Transport = Transport.SMTP
    host: str = ""
    port: int | None = None  # None: the conventional port for `security`
    security: Security = Security.STARTTLS
    verify_certificate: bool = True
    auth_mode: AuthMode = AuthMode.CENTRAL
    username: str = ""
    password: str | None = None  # None or "": keep the stored one
    from_address: str = ""
    reply_to: str = ""
    helo_name: str = ""
    timeout_s: float = 30.0
    send_mode: SendMode = SendMode.QUEUED
    max_messages_per_connection: int = 100
    max_connections: int = 2
    rate_limit_count: int | None = None
    rate_limit_period_s: int | None = None
    failover_account_id: int | None = None
    sendmail_path: str = "/usr/sbin/sendmail"

    def __repr__(self) -> str:
        return f"OutgoingDraft(host={self.host!r}, port={self.port}, password=***)"


@dataclass(frozen=True, slots=True)
class IncomingDraft:
    protocol: IncomingProtocol = IncomingProtocol.IMAP
    host: str = ""
    port: int | None = None
    security: Security = Security.SSL
    verify_certificate: bool = True
    username: str = ""
    password: str | None = None
    folders: tuple[str, ...] = ("INBOX",)
    keep_on_server: bool = True
    after_import: AfterImport = AfterImport.KEEP
    move_to_folder: str = ""
    fetch_since: datetime | None = None
    fetch_interval_s: int = 300
    enabled: bool = True

    def __repr__(self) -> str:
        return f"IncomingDraft(host={self.host!r}, port={self.port}, password=***)"


@dataclass(frozen=True, slots=True)
class AccountDraft:
    name: str
    email: str
    display_name: str = ""
    label: str = ""
    color: str = ""
    description: str = ""
    team_id: int | None = None
    debug: bool = False
    signature_text: str = ""
    signature_html: str = ""
    letterhead_html: str = ""
    work_location_ids: tuple[int, ...] = ()
    outgoing: OutgoingDraft | None = None
    incoming: IncomingDraft | None = None


@dataclass(frozen=True, slots=True)
class AccountQuery:
    status: AccountStatus | None = AccountStatus.ACTIVE
    team_id: int | None = None
    search: str = ""
    offset: int = 0
    limit: int = 50
    sort: str = "name"  # name | -name | created_at | -created_at | updated_at | -updated_at


SORTS = ("name", "-name", "created_at", "-created_at", "updated_at", "-updated_at", "id", "-id")
SECRET_FIELDS = frozenset({"password"})
HEADER_FIELDS = ("name", "email", "display_name", "label")
_PART_HEADER_FIELDS = ("host", "username", "from_address", "reply_to", "helo_name")


def _has_line_break(value: str) -> bool:
    return any(ch in value for ch in "\r\n\x00")


def _looks_like_address(value: str) -> bool:
    local, at, domain = value.rpartition("@")
    return bool(at and local and "." in domain and " " not in value and not domain.startswith("."))


def _valid_host(host: str) -> bool:
    return bool(host) and len(host) <= 253 and all(ch.isalnum() or ch in ".-_:[]" for ch in host)


def validate_draft(draft: AccountDraft) -> dict[str, str]:
    """Field path → message for everything wrong with `draft` (empty when valid)."""
    errors: dict[str, str] = {}
    if not draft.name.strip():
        errors["name"] = "is required"
    elif len(draft.name) > 120:
        errors["name"] = "must be at most 120 characters"
    if not _looks_like_address(draft.email):
        errors["email"] = "is not an e-mail address"
    for name in HEADER_FIELDS:
        if _has_line_break(getattr(draft, name)):
            errors[name] = "must not contain line breaks or NUL"
    for name in ("description", "signature_text", "signature_html", "letterhead_html"):
        if "\x00" in getattr(draft, name):  # PostgreSQL refuses NUL in text; SQLite keeps it
            errors[name] = "must not contain NUL"
    if draft.color and not (
        len(draft.color) in (4, 7)
        and draft.color.startswith("#")
        and all(c in "0123456789abcdefABCDEF" for c in draft.color[1:])
    ):
        errors["color"] = "must be a hex colour like #1f6feb"
    if draft.outgoing is not None:
        errors.update(_validate_outgoing(draft.outgoing))
    if draft.incoming is not None:
        errors.update(_validate_incoming(draft.incoming))
    return errors


def _validate_port(prefix: str, port: int | None, errors: dict[str, str]) -> None:
    if port is not None and not 1 <= port <= 65535:
        errors[f"{prefix}.port"] = "must be between 1 and 65535"


def _validate_part_text(
    prefix: str, part: OutgoingDraft | IncomingDraft, errors: dict[str, str]
) -> None:
    for name in _PART_HEADER_FIELDS:
        value = getattr(part, name, "")
        if isinstance(value, str) and _has_line_break(value):
            errors[f"{prefix}.{name}"] = "must not contain line breaks or NUL"
    if part.password is not None and "\x00" in part.password:
        errors[f"{prefix}.password"] = "must not contain NUL"


def _validate_outgoing(out: OutgoingDraft) -> dict[str, str]:
    errors: dict[str, str] = {}
    _validate_part_text("outgoing", out, errors)
    if out.transport is Transport.SMTP:
        if not out.host:
            errors["outgoing.host"] = (
                "is required for SMTP (usually the part after @ of the address)"
            )
        elif not _valid_host(out.host):
            errors.setdefault("outgoing.host", "is not a valid host name or address")
        _validate_port("outgoing", out.port, errors)
    elif not out.sendmail_path.startswith("/"):
        errors["outgoing.sendmail_path"] = "must be an absolute path"
    if out.auth_mode is AuthMode.CENTRAL and out.transport is Transport.SMTP and not out.username:
        errors["outgoing.username"] = "is required when authentication is central"
    for name in ("from_address", "reply_to"):
        value = getattr(out, name)
        if value and not _looks_like_address(value):
            errors.setdefault(f"outgoing.{name}", "is not an e-mail address")
    if not 1 <= out.timeout_s <= 600:
        errors["outgoing.timeout_s"] = "must be between 1 and 600 seconds"
    if not 1 <= out.max_messages_per_connection <= 10_000:
        errors["outgoing.max_messages_per_connection"] = "must be between 1 and 10000"
    if not 1 <= out.max_connections <= 50:
        errors["outgoing.max_connections"] = "must be between 1 and 50"
    if (out.rate_limit_count is None) != (out.rate_limit_period_s is None):
        errors["outgoing.rate_limit_count"] = "count and period must be given together"
    elif (
        out.rate_limit_count is not None
        and min(out.rate_limit_count, out.rate_limit_period_s or 0) < 1
    ):
        errors["outgoing.rate_limit_count"] = "count and period must be positive"
    return errors


def _validate_incoming(inc: IncomingDraft) -> dict[str, str]:
    errors: dict[str, str] = {}
    _validate_part_text("incoming", inc, errors)
    if not inc.host:
        errors["incoming.host"] = "is required (usually the part after @ of the address)"
    elif not _valid_host(inc.host):
        errors["incoming.host"] = "is not a valid host name or address"
    _validate_port("incoming", inc.port, errors)
    if not inc.username:
        errors["incoming.username"] = "is required"
    if inc.protocol is IncomingProtocol.IMAP:
        if not inc.folders or any(not f.strip() or _has_line_break(f) for f in inc.folders):
            errors["incoming.folders"] = "must list at least one folder name, without line breaks"
        if inc.after_import is AfterImport.MOVE and not inc.move_to_folder.strip():
            errors["incoming.move_to_folder"] = "is required when messages are moved after import"
    elif inc.after_import not in (AfterImport.KEEP, AfterImport.DELETE):
        errors["incoming.after_import"] = "POP3 can only keep or delete messages"
    if not 30 <= inc.fetch_interval_s <= 86_400:
        errors["incoming.fetch_interval_s"] = "must be between 30 and 86400 seconds"
    if inc.fetch_since is not None and inc.fetch_since.tzinfo is not None:
        try:
            inc.fetch_since.astimezone(UTC)
        except OverflowError:  # 9999-12-31T23:59-14:00: no such instant in UTC
            errors["incoming.fetch_since"] = "is out of range once converted to UTC"
    return errors


def account_warnings(account: Account) -> tuple[str, ...]:
    """Warnings every response about `account` carries (the seeds' "fast mode" among them)."""
    warnings = []
    if account.outgoing and account.outgoing.transport is Transport.SMTP:
        if not account.outgoing.verify_certificate:
            warnings.append(
                "outgoing: certificate verification is off (fast mode): the connection can be intercepted"
            )
        if (
            account.outgoing.security is Security.NONE
            and account.outgoing.auth_mode is not AuthMode.NONE
        ):
            warnings.append("outgoing: the password is sent without encryption")
    if account.incoming:
        if not account.incoming.verify_certificate:
            warnings.append(
                "incoming: certificate verification is off (fast mode): the connection can be intercepted"
            )
        if account.incoming.security is Security.NONE:
            warnings.append("incoming: the password is sent without encryption")
    return tuple(warnings)
