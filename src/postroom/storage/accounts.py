"""Account repository: the accounts table with its outgoing and incoming parts.

Passwords arrive here in plaintext inside drafts and leave encrypted; reading an account never
returns a password, only `has_password`. `stored_password()` is the one way back, for the layers
that must log in to a server.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from dataclasses import asdict, fields
from datetime import datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from postroom.domain.accounts import (
    Account,
    AccountDraft,
    AccountQuery,
    AccountStatus,
    AfterImport,
    AuthMode,
    Incoming,
    IncomingDraft,
    IncomingProtocol,
    Outgoing,
    OutgoingDraft,
    Security,
    SendMode,
    Transport,
    default_port,
)
from postroom.errors import Conflict, InvalidInput, NotFound
from postroom.storage.secrets import SecretBox
from postroom.storage.tables.core import (
    account_incoming,
    account_outgoing,
    account_work_locations,
    accounts,
    teams,
    work_locations,
)

Direction = Literal["outgoing", "incoming"]
_OUT = {c.name: c for c in account_outgoing.c}
_INC = {c.name: c for c in account_incoming.c}
_OUT_FIELDS = {f.name for f in fields(OutgoingDraft)} - {"password", "port"}
_INC_FIELDS = {f.name for f in fields(IncomingDraft)} - {"password", "port", "folders"}


def _select() -> sa.Select[Any]:
    cols = [*accounts.c]
    cols += [c.label(f"o_{c.name}") for c in account_outgoing.c]
    cols += [c.label(f"i_{c.name}") for c in account_incoming.c]
    return sa.select(*cols).select_from(
        accounts.outerjoin(
            account_outgoing, account_outgoing.c.account_id == accounts.c.id
        ).outerjoin(account_incoming, account_incoming.c.account_id == accounts.c.id)
    )


def _outgoing(row: sa.Row[Any]) -> Outgoing | None:
    m = row._mapping
    if m["o_account_id"] is None:
        return None
    return Outgoing(
        transport=Transport(m["o_transport"]),
        host=m["o_host"],
        port=m["o_port"],
        security=Security(m["o_security"]),
        verify_certificate=m["o_verify_certificate"],
        auth_mode=AuthMode(m["o_auth_mode"]),
        username=m["o_username"],
        has_password=m["o_password_enc"] is not None,
        from_address=m["o_from_address"],
        reply_to=m["o_reply_to"],
        helo_name=m["o_helo_name"],
        timeout_s=m["o_timeout_s"],
        send_mode=SendMode(m["o_send_mode"]),
        max_messages_per_connection=m["o_max_messages_per_connection"],
        max_connections=m["o_max_connections"],
        rate_limit_count=m["o_rate_limit_count"],
        rate_limit_period_s=m["o_rate_limit_period_s"],
        failover_account_id=m["o_failover_account_id"],
        sendmail_path=m["o_sendmail_path"],
        paused=m["o_paused"],
    )


def _incoming(row: sa.Row[Any]) -> Incoming | None:
    m = row._mapping
    if m["i_account_id"] is None:
        return None
    return Incoming(
        protocol=IncomingProtocol(m["i_protocol"]),
        host=m["i_host"],
        port=m["i_port"],
        security=Security(m["i_security"]),
        verify_certificate=m["i_verify_certificate"],
        username=m["i_username"],
        has_password=m["i_password_enc"] is not None,
        folders=tuple(m["i_folders"]),
        keep_on_server=m["i_keep_on_server"],
        after_import=AfterImport(m["i_after_import"]),
        move_to_folder=m["i_move_to_folder"],
        fetch_since=m["i_fetch_since"],
        fetch_interval_s=m["i_fetch_interval_s"],
        enabled=m["i_enabled"],
    )


def _account(row: sa.Row[Any], location_ids: Sequence[int]) -> Account:
    m = row._mapping
    return Account(
        id=m["id"],
        name=m["name"],
        email=m["email"],
        status=AccountStatus(m["status"]),
        display_name=m["display_name"],
        label=m["label"],
        color=m["color"],
        description=m["description"],
        team_id=m["team_id"],
        debug=m["debug"],
        is_default_outgoing=m["default_outgoing_scope"] is not None,
        is_default_incoming=m["default_incoming_scope"] is not None,
        signature_text=m["signature_text"],
        signature_html=m["signature_html"],
        letterhead_html=m["letterhead_html"],
        outgoing=_outgoing(row),
        incoming=_incoming(row),
        work_location_ids=tuple(location_ids),
        created_at=m["created_at"],
        created_by=m["created_by"],
        updated_at=m["updated_at"],
        updated_by=m["updated_by"],
    )


def draft_of(account: Account) -> AccountDraft:
    """The draft that would store `account` again unchanged (passwords: keep)."""
    out = inc = None
    if account.outgoing is not None:
        values = {k: v for k, v in asdict(account.outgoing).items() if k in _OUT_FIELDS}
        out = OutgoingDraft(**values, port=account.outgoing.port)
    if account.incoming is not None:
        values = {k: v for k, v in asdict(account.incoming).items() if k in _INC_FIELDS}
        inc = IncomingDraft(**values, port=account.incoming.port, folders=account.incoming.folders)
    return AccountDraft(
        name=account.name,
        email=account.email,
        display_name=account.display_name,
        label=account.label,
        color=account.color,
        description=account.description,
        team_id=account.team_id,
        debug=account.debug,
        signature_text=account.signature_text,
        signature_html=account.signature_html,
        letterhead_html=account.letterhead_html,
        work_location_ids=account.work_location_ids,
        outgoing=out,
        incoming=inc,
    )


class AccountRepository:
    def __init__(self, secrets: SecretBox) -> None:
        self._secrets = secrets

    # -- reads ---------------------------------------------------------------------------------

    def get(self, conn: sa.Connection, account_id: int) -> Account:
        row = conn.execute(_select().where(accounts.c.id == account_id)).first()
        if row is None:
            raise NotFound(f"account {account_id} does not exist")
        return _account(row, self._locations(conn, [account_id]).get(account_id, ()))

    def find_by_name(self, conn: sa.Connection, name: str) -> Account | None:
        row = conn.execute(_select().where(accounts.c.name_key == name.strip().casefold())).first()
        if row is None:
            return None
        return _account(row, self._locations(conn, [row.id]).get(row.id, ()))

    def page(
        self, conn: sa.Connection, query: AccountQuery, visible_teams: frozenset[int] | None
    ) -> tuple[list[Account], int]:
        """One page and the total. `visible_teams` None means all teams (admin)."""
        where: list[sa.ColumnElement[bool]] = []
        if query.status is not None:
            where.append(accounts.c.status == query.status.value)
        if query.team_id is not None:
            where.append(accounts.c.team_id == query.team_id)
        if visible_teams is not None:
            where.append(
                sa.or_(accounts.c.team_id.is_(None), accounts.c.team_id.in_(visible_teams))
            )
        if query.search:
            like = f"%{query.search.casefold().replace('%', '').replace('_', '')}%"
            # SQLite's LIKE already ignores ASCII case, and its lower() folds ASCII only, so
            # lower() would change no result there and doubles the cost of the scan.
            fold = (lambda c: c) if conn.dialect.name == "sqlite" else sa.func.lower
            where.append(
                sa.or_(
                    accounts.c.name_key.like(like),
                    fold(accounts.c.email).like(like),
                    fold(accounts.c.label).like(like),
                )
            )
        total = conn.execute(
            sa.select(sa.func.count()).select_from(accounts).where(*where)
        ).scalar_one()
        key = query.sort.lstrip("-")
        column = accounts.c.name_key if key == "name" else accounts.c[key]
        order = column.desc() if query.sort.startswith("-") else column.asc()
        # Page the bare table first, then join the parts for that page only: joining before
        # ORDER BY … OFFSET made SQLite join every matching row to keep 50 (21 ms → 5 ms at
        # offset 2,000 of 10,000).
        page_ids = (
            sa.select(accounts.c.id)
            .where(*where)
            .order_by(order, accounts.c.id)
            .offset(query.offset)
            .limit(query.limit)
        )
        rows = conn.execute(
            _select().where(accounts.c.id.in_(page_ids)).order_by(order, accounts.c.id)
        ).all()
        locations = self._locations(conn, [r.id for r in rows])
        return [_account(r, locations.get(r.id, ())) for r in rows], total

    def ids_with_status(self, conn: sa.Connection, status: AccountStatus) -> builtins.list[int]:
        return list(
            conn.execute(
                sa.select(accounts.c.id).where(accounts.c.status == status.value)
            ).scalars()
        )

    def default_for(
        self, conn: sa.Connection, direction: Direction, team_id: int | None
    ) -> Account | None:
        """The active default account of `team_id` (None: system-wide) for `direction`."""
        column = accounts.c[f"default_{direction}_scope"]
        row = conn.execute(
            _select().where(
                column == (team_id or 0), accounts.c.status == AccountStatus.ACTIVE.value
            )
        ).first()
        return (
            None if row is None else _account(row, self._locations(conn, [row.id]).get(row.id, ()))
        )

    def for_work_location(self, conn: sa.Connection, location_id: int) -> builtins.list[Account]:
        ids = conn.execute(
            sa.select(account_work_locations.c.account_id).where(
                account_work_locations.c.work_location_id == location_id
            )
        ).scalars()
        return [self.get(conn, i) for i in sorted(ids)]

    def stored_password(
        self, conn: sa.Connection, account_id: int, direction: Direction
    ) -> str | None:
        """The decrypted password of one part, or None when none is stored."""
        table = account_outgoing if direction == "outgoing" else account_incoming
        enc = conn.execute(
            sa.select(table.c.password_enc).where(table.c.account_id == account_id)
        ).scalar()
        return None if enc is None else self._secrets.decrypt(enc)

    def _locations(self, conn: sa.Connection, ids: Sequence[int]) -> dict[int, tuple[int, ...]]:
        if not ids:
            return {}
        result: dict[int, list[int]] = {}
        rows = conn.execute(
            sa.select(
                account_work_locations.c.account_id, account_work_locations.c.work_location_id
            )
            .where(account_work_locations.c.account_id.in_(ids))
            .order_by(account_work_locations.c.work_location_id)
        )
        for account_id, location_id in rows:
            result.setdefault(account_id, []).append(location_id)
        return {k: tuple(v) for k, v in result.items()}

    # -- writes --------------------------------------------------------------------------------

    def insert(self, conn: sa.Connection, draft: AccountDraft, actor: str, now: datetime) -> int:
        self._check_references(conn, draft)
        values = self._account_values(draft)
        values.update(
            status=AccountStatus.ACTIVE.value,
            created_at=now,
            created_by=actor,
            updated_at=now,
            updated_by=actor,
        )
        try:
            account_id = int(
                conn.execute(
                    accounts.insert().values(**values).returning(accounts.c.id)
                ).scalar_one()
            )
        except IntegrityError as exc:
            raise Conflict(f"an account named {draft.name!r} already exists") from exc
        self._write_parts(conn, account_id, draft)
        return account_id

    def update(
        self, conn: sa.Connection, account_id: int, draft: AccountDraft, actor: str, now: datetime
    ) -> None:
        self._check_references(conn, draft, account_id)
        values = self._account_values(draft)
        values.update(updated_at=now, updated_by=actor, version=accounts.c.version + 1)
        try:
            conn.execute(accounts.update().where(accounts.c.id == account_id).values(**values))
        except IntegrityError as exc:
            raise Conflict(f"an account named {draft.name!r} already exists") from exc
        self._write_parts(conn, account_id, draft)

    def set_status(
        self, conn: sa.Connection, account_id: int, status: AccountStatus, actor: str, now: datetime
    ) -> None:
        values: dict[str, Any] = {"status": status.value, "updated_at": now, "updated_by": actor}
        values["deleted_at"] = now if status is AccountStatus.DELETED else None
        if status is not AccountStatus.ACTIVE:
            # Only active accounts can be default: leaving active gives the default up.
            values.update(default_outgoing_scope=None, default_incoming_scope=None)
        conn.execute(accounts.update().where(accounts.c.id == account_id).values(**values))

    def set_default(
        self, conn: sa.Connection, account_id: int, direction: Direction, team_id: int | None
    ) -> int | None:
        """Make `account_id` the default of its scope; returns the previous default's id.

        Unset-then-set in one transaction; the unique index on the scope column makes a
        concurrent second writer fail instead of leaving two defaults.
        """
        column = accounts.c[f"default_{direction}_scope"]
        scope = team_id or 0
        if conn.dialect.name == "postgresql":  # one writer per (direction, scope): concurrent
            # unset-then-set pairs deadlock on each other's row locks (SQLite: BEGIN IMMEDIATE)
            key = 1 if direction == "outgoing" else 2
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key, scope)))
        previous = conn.execute(sa.select(accounts.c.id).where(column == scope)).scalar()
        if previous == account_id:
            return account_id
        conn.execute(accounts.update().where(column == scope).values({column.name: None}))
        try:
            conn.execute(
                accounts.update().where(accounts.c.id == account_id).values({column.name: scope})
            )
        except IntegrityError as exc:
            raise Conflict("another default was set at the same time; try again") from exc
        return None if previous is None else int(previous)

    def health(self, conn: sa.Connection, account_id: int) -> dict[str, Any]:
        cols = [
            accounts.c.last_check_at,
            accounts.c.last_ok_at,
            accounts.c.failing_since,
            accounts.c.last_error,
        ]
        row = conn.execute(sa.select(*cols).where(accounts.c.id == account_id)).first()
        if row is None:
            raise NotFound(f"account {account_id} does not exist")
        return dict(row._mapping)

    def health_of(self, conn: sa.Connection, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """`health()` of many accounts in one query (a list page), keyed by account id."""
        keys = ("last_check_at", "last_ok_at", "failing_since", "last_error")
        rows = conn.execute(
            sa.select(accounts.c.id, *(accounts.c[k] for k in keys)).where(accounts.c.id.in_(ids))
        )
        return {r.id: {k: r._mapping[k] for k in keys} for r in rows}

    def set_health(self, conn: sa.Connection, account_id: int, **values: Any) -> None:
        """Update check-health columns (last_check_at, last_ok_at, failing_since, last_error)."""
        conn.execute(accounts.update().where(accounts.c.id == account_id).values(**values))

    def reencrypt_all(self, conn: sa.Connection) -> int:
        """Re-encrypt every account password with the current key; returns how many changed."""
        changed = 0
        for table in (account_outgoing, account_incoming):
            rows = conn.execute(
                sa.select(table.c.account_id, table.c.password_enc).where(
                    table.c.password_enc.is_not(None)
                )
            ).all()
            for account_id, enc in rows:
                if self._secrets.needs_rotation(enc):
                    conn.execute(
                        table.update()
                        .where(table.c.account_id == account_id)
                        .values(password_enc=self._secrets.rotate(enc))
                    )
                    changed += 1
        return changed

    def _account_values(self, draft: AccountDraft) -> dict[str, Any]:
        values = {
            k: v
            for k, v in asdict(draft).items()
            if k not in ("outgoing", "incoming", "work_location_ids")
        }
        values["name"] = draft.name.strip()
        values["name_key"] = draft.name.strip().casefold()
        return values

    def _check_references(
        self, conn: sa.Connection, draft: AccountDraft, account_id: int | None = None
    ) -> None:
        errors: dict[str, str] = {}
        if (
            draft.team_id is not None
            and conn.execute(sa.select(teams.c.id).where(teams.c.id == draft.team_id)).first()
            is None
        ):
            errors["team_id"] = f"team {draft.team_id} does not exist"
        if draft.work_location_ids:
            found = set(
                conn.execute(
                    sa.select(work_locations.c.id).where(
                        work_locations.c.id.in_(draft.work_location_ids)
                    )
                ).scalars()
            )
            missing = sorted(set(draft.work_location_ids) - found)
            if missing:
                errors["work_location_ids"] = (
                    f"unknown work location(s): {', '.join(map(str, missing))}"
                )
        failover = draft.outgoing.failover_account_id if draft.outgoing else None
        if failover is not None:
            if failover == account_id:
                errors["outgoing.failover_account_id"] = "an account cannot fail over to itself"
            elif (
                conn.execute(sa.select(accounts.c.id).where(accounts.c.id == failover)).first()
                is None
            ):
                errors["outgoing.failover_account_id"] = f"account {failover} does not exist"
        if errors:
            raise InvalidInput(fields=errors)

    def _write_parts(self, conn: sa.Connection, account_id: int, draft: AccountDraft) -> None:
        self._write_part(conn, account_outgoing, account_id, draft.outgoing, "smtp")
        self._write_part(conn, account_incoming, account_id, draft.incoming, None)
        conn.execute(
            account_work_locations.delete().where(account_work_locations.c.account_id == account_id)
        )
        if draft.work_location_ids:
            conn.execute(
                account_work_locations.insert(),
                [
                    {"account_id": account_id, "work_location_id": w}
                    for w in sorted(set(draft.work_location_ids))
                ],
            )

    def _write_part(
        self,
        conn: sa.Connection,
        table: sa.Table,
        account_id: int,
        part: OutgoingDraft | IncomingDraft | None,
        protocol: str | None,
    ) -> None:
        cols = [table.c.password_enc] + ([table.c.enabled] if table is account_incoming else [])
        existing = conn.execute(sa.select(*cols).where(table.c.account_id == account_id)).first()
        if part is None:
            conn.execute(table.delete().where(table.c.account_id == account_id))
            return
        values = {k: v for k, v in asdict(part).items() if k in table.c and k != "password"}
        if isinstance(part, IncomingDraft):
            values["folders"] = list(part.folders)
            protocol = part.protocol.value
        values["port"] = part.port or default_port(protocol or "smtp", part.security)
        if part.password:
            values["password_enc"] = self._secrets.encrypt(part.password)
        elif existing is None:
            values["password_enc"] = None
        if (
            isinstance(part, IncomingDraft)
            and existing is not None
            and part.enabled
            and not existing.enabled
        ):
            # Switched back on by a person: start health afresh, or the next single failure
            # would count on top of the ones that switched it off and disable it again at once.
            values.update(
                consecutive_failures=0,
                consecutive_auth_failures=0,
                fetch_failing_since=None,
                next_fetch_at=None,
            )
        if existing is None:
            conn.execute(table.insert().values(account_id=account_id, **values))
        else:
            conn.execute(table.update().where(table.c.account_id == account_id).values(**values))
