"""Reports: the "Mail Server Masters" list of every account and its servers (seed 000).

Rows are plain dicts in a fixed column order (`MASTERS_COLUMNS`) so the API, the web page and
the CLI render the same report; `to_csv` is the one CSV writer for all of them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from postroom.domain.people import Actor
from postroom.storage.reports import MASTERS_COLUMNS, ReportRepository

__all__ = ["MASTERS_COLUMNS", "ReportService", "csv_cell"]

# A cell starting with one of these is run as a formula by spreadsheet programs (OWASP "CSV
# injection"); tab and CR are included because some programs strip them and then evaluate.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str:
    """One value as CSV text: None → "", datetimes ISO 8601, booleans true/false, and text
    that a spreadsheet would evaluate prefixed with a single quote."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if isinstance(value, str) and text.startswith(_FORMULA_START):
        return "'" + text
    return text


class ReportService:
    def __init__(self, engine: sa.Engine, repo: ReportRepository) -> None:
        self._engine = engine
        self._repo = repo

    def mail_server_masters(
        self, actor: Actor, *, include_deleted: bool = False
    ) -> list[dict[str, Any]]:
        """One row per account `actor` can read (admins: all), ordered by name, with the keys
        of `MASTERS_COLUMNS`. Deleted accounts only with `include_deleted`. Never a secret."""
        visible = None if actor.is_admin else actor.team_ids
        with self._engine.begin() as conn:
            return self._repo.mail_server_masters(conn, visible, include_deleted)

    @staticmethod
    def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str] = MASTERS_COLUMNS) -> str:
        """`rows` as CSV (header line first, CRLF line ends as RFC 4180 §2 asks), every cell
        neutralised against formula injection by `csv_cell`."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(columns)
        for row in rows:
            writer.writerow(csv_cell(row.get(column)) for column in columns)
        return out.getvalue()
