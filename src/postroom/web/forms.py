"""The account form: HTML field values ⇄ the typed values AccountService takes.

Field names are the service's dotted paths (`outgoing.port`), so an InvalidInput from the
service lands at the field at fault without a mapping table. Parsing never raises: it returns
the values it could read and an error per field it could not.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from postroom.domain.accounts import (
    Account,
    AccountDraft,
    AfterImport,
    AuthMode,
    IncomingDraft,
    IncomingProtocol,
    OutgoingDraft,
    Security,
    SendMode,
    Transport,
)

FormData = Mapping[str, str]

_TOP_TEXT = ("name", "email", "display_name", "label", "color", "description")
_TOP_LONG = ("signature_text", "signature_html")
_OUT_TEXT = ("host", "username", "from_address", "reply_to", "helo_name", "sendmail_path")
_OUT_ENUMS: dict[str, type[StrEnum]] = {
    "transport": Transport,
    "security": Security,
    "auth_mode": AuthMode,
    "send_mode": SendMode,
}
_IN_TEXT = ("host", "username", "move_to_folder")
_IN_ENUMS: dict[str, type[StrEnum]] = {
    "protocol": IncomingProtocol,
    "security": Security,
    "after_import": AfterImport,
}


class _Reader:
    def __init__(self, form: FormData) -> None:
        self.form = form
        self.errors: dict[str, str] = {}

    def text(self, key: str) -> str:
        return self.form.get(key, "").strip()

    def flag(self, key: str) -> bool:
        return self.form.get(key, "") in ("on", "true", "1")

    def number(self, key: str, kind: type[int] | type[float], *, optional: bool = False) -> Any:
        raw = self.text(key)
        if not raw and optional:
            return None
        try:
            return kind(raw)
        except ValueError:
            self.errors[key] = "must be a number"
            return None

    def choice(self, key: str, enum: type[StrEnum]) -> Any:
        try:
            return enum(self.text(key))
        except ValueError:
            self.errors[key] = "choose one of: " + ", ".join(m.value for m in enum)
            return None


def parse(form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """The form as AccountService changes ({field: value, 'outgoing': {...} | None, ...}) and
    the fields that could not be read. An empty password is left out (keep the stored one)."""
    r = _Reader(form)
    values: dict[str, Any] = {k: r.text(k) for k in _TOP_TEXT}
    values.update({k: form.get(k, "") for k in _TOP_LONG})
    values["debug"] = r.flag("debug")
    team = r.text("team_id")
    values["team_id"] = r.number("team_id", int) if team else None
    values["outgoing"] = _outgoing(r) if r.flag("has_outgoing") else None
    values["incoming"] = _incoming(r) if r.flag("has_incoming") else None
    return values, r.errors


def _outgoing(r: _Reader) -> dict[str, Any]:
    part: dict[str, Any] = {k: r.text(f"outgoing.{k}") for k in _OUT_TEXT}
    part.update({k: r.choice(f"outgoing.{k}", e) for k, e in _OUT_ENUMS.items()})
    part["port"] = r.number("outgoing.port", int, optional=True)
    part["timeout_s"] = r.number("outgoing.timeout_s", float)
    part["max_messages_per_connection"] = r.number("outgoing.max_messages_per_connection", int)
    part["failover_account_id"] = r.number("outgoing.failover_account_id", int, optional=True)
    part["verify_certificate"] = r.flag("outgoing.verify_certificate")
    if password := r.form.get("outgoing.password", ""):
        part["password"] = password
    return part


def _incoming(r: _Reader) -> dict[str, Any]:
    part: dict[str, Any] = {k: r.text(f"incoming.{k}") for k in _IN_TEXT}
    part.update({k: r.choice(f"incoming.{k}", e) for k, e in _IN_ENUMS.items()})
    part["port"] = r.number("incoming.port", int, optional=True)
    part["fetch_interval_s"] = r.number("incoming.fetch_interval_s", int)
    part["verify_certificate"] = r.flag("incoming.verify_certificate")
    folders = [f.strip() for f in r.text("incoming.folders").split(",") if f.strip()]
    part["folders"] = tuple(folders)
    part["keep_on_server"] = part["after_import"] is not AfterImport.DELETE
    if password := r.form.get("incoming.password", ""):
        part["password"] = password
    return part


def to_draft(values: Mapping[str, Any]) -> AccountDraft:
    """A complete draft from parsed values (for create and for testing unsaved values)."""
    top = {k: v for k, v in values.items() if k not in ("outgoing", "incoming")}
    out, inc = values.get("outgoing"), values.get("incoming")
    return AccountDraft(
        **top,
        outgoing=OutgoingDraft(**out) if out is not None else None,
        incoming=IncomingDraft(**inc) if inc is not None else None,
    )


def blank() -> dict[str, str]:
    """Field values of an empty form (what the create page starts with)."""
    out, inc = OutgoingDraft(), IncomingDraft()
    return {
        "has_outgoing": "on",
        **_part_values("outgoing", out, _OUT_TEXT, _OUT_ENUMS),
        "outgoing.port": "",
        "outgoing.timeout_s": f"{out.timeout_s:g}",
        "outgoing.max_messages_per_connection": str(out.max_messages_per_connection),
        "outgoing.verify_certificate": "on",
        **_part_values("incoming", inc, _IN_TEXT, _IN_ENUMS),
        "incoming.port": "",
        "incoming.folders": "INBOX",
        "incoming.fetch_interval_s": str(inc.fetch_interval_s),
        "incoming.verify_certificate": "on",
    }


def from_account(account: Account) -> dict[str, str]:
    """Field values showing `account` (passwords are never put back into a form)."""
    values: dict[str, str] = {k: str(getattr(account, k)) for k in (*_TOP_TEXT, *_TOP_LONG)}
    values["team_id"] = "" if account.team_id is None else str(account.team_id)
    values["debug"] = "on" if account.debug else ""
    defaults = blank()
    if (out := account.outgoing) is not None:
        values.update(_part_values("outgoing", out, _OUT_TEXT, _OUT_ENUMS))
        values["has_outgoing"] = "on"
        values["outgoing.port"] = str(out.port)
        values["outgoing.timeout_s"] = f"{out.timeout_s:g}"
        values["outgoing.max_messages_per_connection"] = str(out.max_messages_per_connection)
        failover = out.failover_account_id
        values["outgoing.failover_account_id"] = "" if failover is None else str(failover)
        values["outgoing.verify_certificate"] = "on" if out.verify_certificate else ""
    else:
        values.update({k: v for k, v in defaults.items() if k.startswith("outgoing.")})
    if (inc := account.incoming) is not None:
        values.update(_part_values("incoming", inc, _IN_TEXT, _IN_ENUMS))
        values["has_incoming"] = "on"
        values["incoming.port"] = str(inc.port)
        values["incoming.folders"] = ", ".join(inc.folders)
        values["incoming.fetch_interval_s"] = str(inc.fetch_interval_s)
        values["incoming.verify_certificate"] = "on" if inc.verify_certificate else ""
    else:
        values.update({k: v for k, v in defaults.items() if k.startswith("incoming.")})
    return values


def _part_values(
    prefix: str, part: object, texts: tuple[str, ...], enums: Mapping[str, type[StrEnum]]
) -> dict[str, str]:
    out = {f"{prefix}.{k}": str(getattr(part, k)) for k in texts}
    out.update({f"{prefix}.{k}": getattr(part, k).value for k in enums})
    return out


def echo(form: FormData) -> dict[str, str]:
    """The submitted values to show again after an error — without any password."""
    return {k: v for k, v in form.items() if not k.endswith("password")}


# Human names of the fields, for the error summary at the top of the form.
LABELS = {
    "name": "Name",
    "email": "E-mail address",
    "color": "Colour",
    "team_id": "Team",
    "outgoing.host": "Outgoing server",
    "outgoing.port": "Outgoing port",
    "outgoing.security": "Outgoing security",
    "outgoing.username": "Outgoing user name",
    "outgoing.password": "Outgoing password",
    "outgoing.from_address": "From address",
    "outgoing.reply_to": "Reply-To",
    "outgoing.timeout_s": "Timeout",
    "outgoing.sendmail_path": "sendmail binary",
    "incoming.host": "Incoming server",
    "incoming.port": "Incoming port",
    "incoming.security": "Incoming security",
    "incoming.username": "Incoming user name",
    "incoming.password": "Incoming password",
    "incoming.folders": "Folders",
    "incoming.move_to_folder": "Move to folder",
    "incoming.fetch_interval_s": "Fetch interval",
}
