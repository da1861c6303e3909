"""Schemas of the reports."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from postroom.api.schemas.common import Strict


class MastersReport(Strict):
    """The "Mail Server Masters" report (seed 000): one row per account, keys in `columns`
    order (the same columns as the CSV export)."""

    columns: list[str]
    rows: list[dict[str, Any]] = Field(description="one object per account; never a secret")
