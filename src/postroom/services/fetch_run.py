"""One fetch run's bookkeeping, and the small rules the IMAP and POP3 fetches share."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TypeVar

from postroom.domain.accounts import Account, AfterImport, Incoming
from postroom.domain.inbox import FetchReport, StoreOutcome
from postroom.errors import FetchError
from postroom.protocols.imap import FetchedMessage

Progress = Callable[[int, int | None], None]
"""Called with (messages handled so far, expected total or None) during a fetch."""

T = TypeVar("T")


def chunks(
    items: Iterator[T], size: int, weight: Callable[[T], int] | None = None, max_weight: int = 0
) -> Iterator[list[T]]:
    """Lists of at most `size` items and, with `weight`, of at most `max_weight` in all (the
    last item may cross it): a batch of big messages never piles up in memory."""
    batch: list[T] = []
    total = 0
    for item in items:
        batch.append(item)
        total += weight(item) if weight else 0
        if len(batch) >= size or (weight and total >= max_weight):
            yield batch
            batch, total = [], 0
    if batch:
        yield batch


def raw_size(message: FetchedMessage) -> int:
    return len(message.raw)


def after_import(incoming: Incoming) -> AfterImport:
    """The IMAP action after import; `keep_on_server=False` without an action means delete."""
    if incoming.after_import is AfterImport.KEEP and not incoming.keep_on_server:
        return AfterImport.DELETE
    return incoming.after_import


class Interrupted(FetchError):
    """The fetch stopped between batches because the fetcher is shutting down."""


def report(
    run: Run, account: Account | None, error: str, *, auth: bool, reason: str | None
) -> FetchReport:
    c = run.counts
    return FetchReport(
        account_id=run.account_id,
        protocol=account.incoming.protocol.value if account and account.incoming else "",
        ok=not error,
        stored=c[StoreOutcome.STORED],
        quarantined=c[StoreOutcome.QUARANTINED],
        duplicates=c[StoreOutcome.DUPLICATE],
        skipped=c[StoreOutcome.SKIPPED],
        error=error,
        auth_failure=auth,
        disabled_reason=reason or "",
        folders=tuple(run.folders),
    )


def aware(value: datetime | None) -> datetime | None:
    """IMAPClient hands INTERNALDATE over as naive local time; make it aware UTC."""
    if value is None:
        return None
    return value.astimezone(UTC)


@dataclass
class Run:
    """Counters of one fetch run."""

    account_id: int
    owner: str
    progress: Progress | None
    counts: dict[StoreOutcome, int] = field(default_factory=lambda: dict.fromkeys(StoreOutcome, 0))
    handled: int = 0
    total: int | None = None
    folders: list[str] = field(default_factory=list)

    def add(self, outcomes: list[StoreOutcome]) -> None:
        for outcome in outcomes:
            self.counts[outcome] += 1
        self.handled += len(outcomes)
        if self.progress is not None:
            self.progress(self.handled, self.total)
