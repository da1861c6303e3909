"""Export and import of accounts as YAML, for backups, moving between instances and review.

Document shape (`yaml.safe_dump` / `yaml.safe_load` only; no Python tags)::

    format: postroom-accounts
    version: 1
    with_secrets: false
    accounts:
      - name: Sales
        email: sales@example.com
        status: active
        team: Sales team            # by name, so the file works on another instance
        work_locations: [Berlin]    # by name
        outgoing: {transport: smtp, host: ..., failover_account: Backup, ...}
        incoming: {protocol: imap, host: ..., folders: [INBOX], ...}

Secrets are left out unless exported `with_secrets`; then each part carries
`password_encrypted`, the SecretBox token, which only an instance holding the same key can read.
Plaintext passwords are refused on import, so a file never has to hold one.

Import checks every record before it writes anything, then writes all records in one
transaction (upsert by case-insensitive name), so a bad record leaves the database unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any

import sqlalchemy as sa
import yaml

from postroom.domain.accounts import (
    Account,
    AccountDraft,
    AccountQuery,
    AccountStatus,
    IncomingDraft,
    OutgoingDraft,
    validate_draft,
)
from postroom.domain.people import Actor
from postroom.errors import Forbidden, InvalidInput, SecretError
from postroom.services.audit import AuditService, diff
from postroom.services.draft_values import choices, convert_fields
from postroom.storage.accounts import AccountRepository, Direction, draft_of
from postroom.storage.people import PeopleRepository
from postroom.storage.secrets import SecretBox
from postroom.storage.types import utcnow

FORMAT = "postroom-accounts"
VERSION = 1
_TOP_KEYS = frozenset({"format", "version", "with_secrets", "accounts"})
_PAGE = 500

# Draft fields that the file spells differently (by name instead of id, or encrypted).
_ACCOUNT_RENAMED = {"team_id": "team", "work_location_ids": "work_locations"}
_PART_RENAMED = {"failover_account_id": "failover_account", "password": "password_encrypted"}
_PARTS: dict[Direction, type[OutgoingDraft] | type[IncomingDraft]] = {
    "outgoing": OutgoingDraft,
    "incoming": IncomingDraft,
}


@dataclass(frozen=True, slots=True)
class ImportResult:
    """Account names by what the import did to them (or would do, on a dry run)."""

    created: tuple[str, ...]
    updated: tuple[str, ...]
    skipped: tuple[str, ...]
    dry_run: bool = False


@dataclass(frozen=True, slots=True)
class _Record:
    """One validated record: the draft (failover unresolved) and what still needs names."""

    index: int
    draft: AccountDraft
    status: AccountStatus
    failover_name: str | None


def _one_line(exc: yaml.YAMLError) -> str:
    """PyYAML's multi-line report (problem, context, a caret drawing) as one line for the CLI."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if mark is None:
        return str(problem)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})"


class PortabilityService:
    def __init__(
        self,
        engine: sa.Engine,
        accounts: AccountRepository,
        people: PeopleRepository,
        audit: AuditService,
        secrets: SecretBox,
    ) -> None:
        self._engine = engine
        self._accounts = accounts
        self._people = people
        self._audit = audit
        self._secrets = secrets

    # -- export --------------------------------------------------------------------------------

    def export_yaml(
        self, actor: Actor, *, with_secrets: bool = False, include_deleted: bool = False
    ) -> str:
        """Every account `actor` can read, by name, as a YAML document. `with_secrets` (admins
        only) adds each stored password encrypted with the current key."""
        if with_secrets and not actor.is_admin:
            raise Forbidden("only admins can export secrets")
        visible = None if actor.is_admin else actor.team_ids
        with self._engine.begin() as conn:
            teams = {t.id: t.name for t in self._people.list_teams(conn)}
            locations = {w.id: w.name for w in self._people.list_locations(conn)}
            records = []
            for account in self._all(conn, visible):
                if account.status is AccountStatus.DELETED and not include_deleted:
                    continue
                record = self._record_of(conn, account, teams, locations)
                if with_secrets:
                    self._add_secrets(conn, account, record)
                records.append(record)
        document = {
            "format": FORMAT,
            "version": VERSION,
            "with_secrets": with_secrets,
            "accounts": records,
        }
        return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)

    def _all(self, conn: sa.Connection, visible: frozenset[int] | None) -> list[Account]:
        found: list[Account] = []
        while True:
            query = AccountQuery(status=None, offset=len(found), limit=_PAGE, sort="name")
            page, total = self._accounts.page(conn, query, visible)
            found.extend(page)
            if not page or len(found) >= total:
                return found

    def _record_of(
        self,
        conn: sa.Connection,
        account: Account,
        teams: Mapping[int, str],
        locations: Mapping[int, str],
    ) -> dict[str, Any]:
        draft = draft_of(account)
        record: dict[str, Any] = {"name": draft.name, "email": draft.email}
        record["status"] = account.status.value
        for f in fields(AccountDraft):
            value = getattr(draft, f.name)
            if f.name in ("name", "email"):
                continue
            if f.name == "team_id":
                record["team"] = None if value is None else teams[value]
            elif f.name == "work_location_ids":
                record["work_locations"] = [locations[i] for i in value]
            elif f.name in _PARTS:
                record[f.name] = None if value is None else self._part_record(conn, value)
            else:
                record[f.name] = _yaml_value(value)
        return record

    def _part_record(
        self, conn: sa.Connection, part: OutgoingDraft | IncomingDraft
    ) -> dict[str, Any]:
        record: dict[str, Any] = {}
        for f in fields(part):
            value = getattr(part, f.name)
            if f.name == "password":
                continue
            if f.name == "failover_account_id":
                record["failover_account"] = (
                    None if value is None else self._accounts.get(conn, value).name
                )
            else:
                record[f.name] = _yaml_value(value)
        return record

    def _add_secrets(self, conn: sa.Connection, account: Account, record: dict[str, Any]) -> None:
        for direction in _PARTS:
            if record.get(direction) is None:
                continue
            password = self._accounts.stored_password(conn, account.id, direction)
            if password is not None:
                record[direction]["password_encrypted"] = self._secrets.encrypt(password)

    # -- import --------------------------------------------------------------------------------

    def import_yaml(self, actor: Actor, text: str, *, dry_run: bool = False) -> ImportResult:
        """Upsert the accounts of an export document by name, all or nothing.

        Raises InvalidInput naming `accounts[<index>].<field>` for every bad value or unknown
        key (nothing is written then), Forbidden when a record belongs to a team `actor` cannot
        manage. A record equal to the stored account is skipped. `dry_run` checks and reports
        without keeping any change.
        """
        try:
            document = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise InvalidInput(fields={"file": f"is not valid YAML: {_one_line(exc)}"}) from exc
        raw_records = _check_document(document)
        with self._engine.connect() as conn, conn.begin() as tx:
            records = self._validate(conn, actor, raw_records)
            result = self._write(conn, actor, records, dry_run)
            if dry_run:
                tx.rollback()
        return result

    def _validate(self, conn: sa.Connection, actor: Actor, raw_records: list[Any]) -> list[_Record]:
        teams = {t.name.casefold(): t.id for t in self._people.list_teams(conn)}
        locations = {w.name.casefold(): w.id for w in self._people.list_locations(conn)}
        errors: dict[str, str] = {}
        records: list[_Record] = []
        seen: dict[str, int] = {}
        for index, raw in enumerate(raw_records):
            prefix = f"accounts[{index}]"
            record = self._parse(index, raw, teams, locations, errors)
            if record is None:
                continue
            key = record.draft.name.strip().casefold()
            if key in seen:
                errors[f"{prefix}.name"] = f"repeats the name of accounts[{seen[key]}]"
                continue
            seen[key] = index
            records.append(record)
        names = {r.draft.name.strip().casefold() for r in records}
        for record in records:
            self._check_record(conn, actor, record, names, errors)
        if errors:
            raise InvalidInput(fields=errors)
        return records

    def _parse(
        self,
        index: int,
        raw: Any,
        teams: Mapping[str, int],
        locations: Mapping[str, int],
        errors: dict[str, str],
    ) -> _Record | None:
        if not isinstance(raw, Mapping):
            errors[f"accounts[{index}]"] = "must be a mapping of field names to values"
            return None
        prefix = f"accounts[{index}]"
        before = len(errors)
        raw = dict(raw)
        status = AccountStatus.ACTIVE
        if "status" in raw:
            status_value = raw.pop("status")
            try:
                status = AccountStatus(status_value)
            except ValueError:
                errors[f"{prefix}.status"] = choices(AccountStatus)
        values = convert_fields(
            AccountDraft, raw, prefix, errors, _ACCOUNT_RENAMED, frozenset(_PARTS)
        )
        team = values.pop("team", None)
        values["team_id"] = None
        if team is not None:
            if not isinstance(team, str) or team.casefold() not in teams:
                errors[f"{prefix}.team"] = f"no team named {team!r}"
            else:
                values["team_id"] = teams[team.casefold()]
        wanted = values.pop("work_locations", None) or []
        if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
            errors[f"{prefix}.work_locations"] = "must be a list of work location names"
        else:
            unknown = [w for w in wanted if w.casefold() not in locations]
            if unknown:
                errors[f"{prefix}.work_locations"] = f"unknown: {', '.join(unknown)}"
            values["work_location_ids"] = tuple(locations.get(w.casefold(), 0) for w in wanted)
        failover_name = None
        for direction, cls in _PARTS.items():
            part = values.get(direction)
            if part is None:
                continue
            if not isinstance(part, Mapping):
                errors[f"{prefix}.{direction}"] = "must be a mapping or null"
                continue
            part = dict(part)
            if "password" in part:
                errors[f"{prefix}.{direction}.password"] = (
                    "plaintext passwords are not imported; export with --with-secrets to get "
                    "password_encrypted"
                )
                part.pop("password")
            part_values = convert_fields(cls, part, f"{prefix}.{direction}", errors, _PART_RENAMED)
            token = part_values.pop("password_encrypted", None)
            if token is not None:
                part_values["password"] = self._decrypt(token, f"{prefix}.{direction}", errors)
            if direction == "outgoing":
                failover_name = part_values.pop("failover_account", None)
                if failover_name is not None and not isinstance(failover_name, str):
                    errors[f"{prefix}.outgoing.failover_account"] = "must be an account name"
            values[direction] = part_values
        for name in ("name", "email"):
            if name not in values:
                errors[f"{prefix}.{name}"] = "is required"
        if len(errors) > before:
            return None
        outgoing = values.pop("outgoing", None)
        incoming = values.pop("incoming", None)
        draft = AccountDraft(
            **values,
            outgoing=None if outgoing is None else OutgoingDraft(**outgoing),
            incoming=None if incoming is None else IncomingDraft(**incoming),
        )
        for field, message in validate_draft(draft).items():
            errors[f"{prefix}.{field}"] = message
        if len(errors) > before:
            return None
        return _Record(index, draft, status, failover_name)

    def _decrypt(self, token: Any, prefix: str, errors: dict[str, str]) -> str | None:
        field = f"{prefix}.password_encrypted"
        if not isinstance(token, str):
            errors[field] = "must be text"
            return None
        try:
            return self._secrets.decrypt(token)
        except SecretError:
            errors[field] = "cannot be decrypted with the configured key (exported elsewhere?)"
            return None

    def _check_record(
        self,
        conn: sa.Connection,
        actor: Actor,
        record: _Record,
        names_in_file: set[str],
        errors: dict[str, str],
    ) -> None:
        prefix = f"accounts[{record.index}]"
        draft = record.draft
        existing = self._accounts.find_by_name(conn, draft.name)
        for team_id in {draft.team_id, existing.team_id if existing else draft.team_id}:
            if not actor.can_manage(team_id):
                raise Forbidden(f"{prefix}: you cannot manage accounts of this team")
        if (
            existing is not None
            and existing.team_id != draft.team_id
            and (existing.is_default_outgoing or existing.is_default_incoming)
        ):
            errors[f"{prefix}.team"] = "a default account cannot change team"
        name = record.failover_name
        if name is not None:
            if name.strip().casefold() == draft.name.strip().casefold():
                errors[f"{prefix}.outgoing.failover_account"] = "cannot be the account itself"
            elif (
                name.strip().casefold() not in names_in_file
                and self._accounts.find_by_name(conn, name) is None
            ):
                errors[f"{prefix}.outgoing.failover_account"] = f"no account named {name!r}"

    def _write(
        self, conn: sa.Connection, actor: Actor, records: list[_Record], dry_run: bool
    ) -> ImportResult:
        # Two passes so that failover references to accounts created by this same import (even
        # in a cycle) resolve: first every new account exists, then every record is completed.
        now = utcnow()
        originals = {r.index: self._accounts.find_by_name(conn, r.draft.name) for r in records}
        ids: dict[int, int] = {}
        for record in records:
            original = originals[record.index]
            if original is None:
                ids[record.index] = self._accounts.insert(
                    conn, _without_failover(record.draft), actor.email, now
                )
            else:
                ids[record.index] = original.id
        created, updated, skipped = [], [], []
        for record in records:
            account_id, original = ids[record.index], originals[record.index]
            final = self._resolved(conn, record)
            if original is None:
                if final.outgoing is not None and final.outgoing.failover_account_id is not None:
                    self._accounts.update(
                        conn, account_id, _without_password(final), actor.email, now
                    )
                if record.status is not AccountStatus.ACTIVE:
                    self._accounts.set_status(conn, account_id, record.status, actor.email, now)
                changes = diff(None, final)
                changes["status"] = [None, record.status.value]
                self._audit.record(
                    conn, actor, "import-create", "account", account_id, changes, account_id
                )
                created.append(final.name)
                continue
            final = self._drop_unchanged_passwords(conn, account_id, final)
            changes = diff(draft_of(original), final)
            if changes:
                self._accounts.update(conn, account_id, final, actor.email, now)
            if original.status is not record.status:
                self._accounts.set_status(conn, account_id, record.status, actor.email, now)
                changes["status"] = [original.status.value, record.status.value]
            if not changes:
                skipped.append(final.name)
                continue
            self._audit.record(
                conn, actor, "import-update", "account", account_id, changes, account_id
            )
            updated.append(final.name)
        return ImportResult(tuple(created), tuple(updated), tuple(skipped), dry_run)

    def _resolved(self, conn: sa.Connection, record: _Record) -> AccountDraft:
        draft = record.draft
        if draft.outgoing is None or record.failover_name is None:
            return draft
        target = self._accounts.find_by_name(conn, record.failover_name)
        assert target is not None  # checked by _check_record; created by the first pass
        return replace(draft, outgoing=replace(draft.outgoing, failover_account_id=target.id))

    def _drop_unchanged_passwords(
        self, conn: sa.Connection, account_id: int, draft: AccountDraft
    ) -> AccountDraft:
        """A password equal to the stored one is no change (so a re-import can be skipped)."""
        parts: dict[str, Any] = {}
        for direction in _PARTS:
            part = getattr(draft, direction)
            if part is not None and part.password is not None:
                stored = self._accounts.stored_password(conn, account_id, direction)
                if stored == part.password:
                    parts[direction] = replace(part, password=None)
        return replace(draft, **parts)


# -- conversion helpers ---------------------------------------------------------------------------


def _check_document(document: Any) -> list[Any]:
    if not isinstance(document, Mapping):
        raise InvalidInput(fields={"file": "must be a Postroom accounts export (a mapping)"})
    unknown = sorted(set(document) - _TOP_KEYS, key=str)
    if unknown:
        raise InvalidInput(fields={str(k): "is not a known field" for k in unknown})
    if document.get("format") != FORMAT:
        raise InvalidInput(fields={"format": f"must be {FORMAT!r}"})
    if document.get("version") != VERSION:
        raise InvalidInput(fields={"version": f"must be {VERSION}"})
    records = document.get("accounts")
    if not isinstance(records, list):
        raise InvalidInput(fields={"accounts": "must be a list"})
    return records


def _yaml_value(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, tuple):
        return list(value)
    return value


def _without_failover(draft: AccountDraft) -> AccountDraft:
    if draft.outgoing is None:
        return draft
    return replace(draft, outgoing=replace(draft.outgoing, failover_account_id=None))


def _without_password(draft: AccountDraft) -> AccountDraft:
    parts = {d: replace(p, password=None) for d in _PARTS if (p := getattr(draft, d)) is not None}
    return replace(draft, **parts)
