"""Schemas of the system log (seed 001 sys_log)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from postroom.api.schemas.common import PagePublic, Public
from postroom.storage.audit import LogEntry


class LogEntryPublic(Public):
    """A list line: the transcript is left out (see GET /api/v1/logs/{id})."""

    id: int
    created_at: datetime
    source: str
    level: str
    action: str
    message: str
    account_id: int | None
    user: str
    has_transcript: bool

    @classmethod
    def of(cls, entry: LogEntry) -> LogEntryPublic:
        return cls.model_validate(_fields(cls, entry))


class LogEntryDetail(LogEntryPublic):
    """One entry with its (already redacted) protocol transcript."""

    transcript: list[dict[str, Any]] | None

    @classmethod
    def of(cls, entry: LogEntry) -> LogEntryDetail:
        return cls.model_validate(_fields(cls, entry))


def _fields(cls: type[LogEntryPublic], entry: LogEntry) -> dict[str, Any]:
    data = {name: getattr(entry, name, None) for name in cls.model_fields}
    data["has_transcript"] = bool(entry.transcript)
    return data


LogPage = PagePublic[LogEntryPublic]
