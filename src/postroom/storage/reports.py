"""Read-only queries behind the reports: one joined SELECT per report, no N+1."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from postroom.domain.accounts import AccountStatus
from postroom.storage.tables.core import account_incoming, account_outgoing, accounts, teams

_OUT = account_outgoing.c
_INC = account_incoming.c

# Report column → SQL expression. The order here is the column order of the report.
_MASTERS: dict[str, sa.ColumnElement[Any]] = {
    "id": accounts.c.id,
    "name": accounts.c.name,
    "email": accounts.c.email,
    "status": accounts.c.status,
    "team": teams.c.name,
    "label": accounts.c.label,
    "outgoing_transport": _OUT.transport,
    "outgoing_host": _OUT.host,
    "outgoing_port": _OUT.port,
    "outgoing_security": _OUT.security,
    "outgoing_auth_mode": _OUT.auth_mode,
    "outgoing_verify_certificate": _OUT.verify_certificate,
    "incoming_protocol": _INC.protocol,
    "incoming_host": _INC.host,
    "incoming_port": _INC.port,
    "incoming_security": _INC.security,
    "default_outgoing": accounts.c.default_outgoing_scope.is_not(None),
    "default_incoming": accounts.c.default_incoming_scope.is_not(None),
    "last_check_at": accounts.c.last_check_at,
    "last_ok_at": accounts.c.last_ok_at,
    "failing_since": accounts.c.failing_since,
    "created_at": accounts.c.created_at,
    "created_by": accounts.c.created_by,
    "updated_at": accounts.c.updated_at,
    "updated_by": accounts.c.updated_by,
}
MASTERS_COLUMNS = tuple(_MASTERS)


class ReportRepository:
    def mail_server_masters(
        self,
        conn: sa.Connection,
        visible_teams: frozenset[int] | None,
        include_deleted: bool,
    ) -> list[dict[str, Any]]:
        """One row per account ordered by name; `visible_teams` None means every team.

        Accounts without an outgoing or incoming part get None in that part's columns.
        """
        query = (
            sa.select(*(expr.label(name) for name, expr in _MASTERS.items()))
            .select_from(
                accounts.outerjoin(teams, teams.c.id == accounts.c.team_id)
                .outerjoin(account_outgoing, _OUT.account_id == accounts.c.id)
                .outerjoin(account_incoming, _INC.account_id == accounts.c.id)
            )
            .order_by(accounts.c.name_key, accounts.c.id)
        )
        if not include_deleted:
            query = query.where(accounts.c.status != AccountStatus.DELETED.value)
        if visible_teams is not None:
            query = query.where(
                sa.or_(accounts.c.team_id.is_(None), accounts.c.team_id.in_(visible_teams))
            )
        return [dict(row._mapping) for row in conn.execute(query)]
