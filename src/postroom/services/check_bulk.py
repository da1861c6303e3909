"""The bulk part of the checks: running many probes on a bounded thread pool, and the in-process
registry of background check jobs the API polls. Used by services/checks.py only."""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Literal, TypeVar

from postroom.domain.accounts import Account
from postroom.domain.checks import CheckResult
from postroom.domain.people import Actor
from postroom.errors import Conflict, NotFound
from postroom.storage.types import utcnow

P = TypeVar("P")
R = TypeVar("R")
JobStatus = Literal["running", "done", "failed"]
Progress = Callable[[int, int], None]
"""Called with (accounts done, accounts in total) as a bulk check advances."""
KEPT_JOBS = 20


def run_grouped(
    groups: Sequence[Sequence[P]],
    run: Callable[[P], R],
    finish: Callable[[int, list[R]], None],
    workers: int,
) -> list[list[R]]:
    """Run every item of every group, `workers` at a time; call `finish(group index, results)`
    as soon as a group's last item is done (from a pool thread; an empty group at once).

    One pool task per item, not per group: a group of two slow items costs two slots for one
    deadline, never two deadlines in a row.
    """
    slots: list[list[R | None]] = [[None] * len(group) for group in groups]
    pending = [len(group) for group in groups]
    lock = threading.Lock()

    def task(index: int, position: int) -> None:
        slots[index][position] = run(groups[index][position])
        with lock:
            pending[index] -= 1
            last = pending[index] == 0
        if last:
            finish(index, [r for r in slots[index] if r is not None])

    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="check") as pool:
        futures = [pool.submit(task, i, j) for i, g in enumerate(groups) for j in range(len(g))]
        for index, group in enumerate(groups):
            if not group:
                finish(index, [])
        for future in futures:
            future.result()
    return [[r for r in slot if r is not None] for slot in slots]


@dataclass
class CheckJob:
    """A bulk check running in the background: progress while it runs, results once done."""

    id: str
    started_by: str
    started_at: datetime
    status: JobStatus = "running"
    total: int = 0
    done: int = 0
    finished_at: datetime | None = None
    error: str = ""
    results: list[tuple[Account, list[CheckResult]]] = field(default_factory=list)


Work = Callable[[Progress], list[tuple[Account, list[CheckResult]]]]


class JobRegistry:
    """Background jobs of this process (the newest KEPT_JOBS are kept; a restart forgets them).

    One job at a time: a bulk check against every server should never run twice at once.
    """

    def __init__(self) -> None:
        self._jobs: dict[str, CheckJob] = {}
        self._lock = threading.Lock()

    def start(self, actor: Actor, work: Work) -> str:
        with self._lock:
            running = [j for j in self._jobs.values() if j.status == "running"]
            if running:
                raise Conflict(f"a bulk check is already running (job {running[0].id})")
            job = CheckJob(id=secrets.token_hex(8), started_by=actor.email, started_at=utcnow())
            self._jobs[job.id] = job
            for old in list(self._jobs)[:-KEPT_JOBS]:
                del self._jobs[old]
        threading.Thread(
            target=self._run, args=(job, work), name=f"check-job-{job.id}", daemon=True
        ).start()
        return job.id

    def get(self, actor: Actor, job_id: str) -> CheckJob:
        """A snapshot; visible to the actor who started the job and to admins."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or not (actor.is_admin or job.started_by == actor.email):
                raise NotFound(f"no check job {job_id!r}")
            return replace(job, results=list(job.results))

    def _run(self, job: CheckJob, work: Work) -> None:
        def progress(done: int, total: int) -> None:
            with self._lock:
                job.done, job.total = done, total

        try:
            results = work(progress)
        except Exception as exc:  # a background thread has no caller: the job reports it
            with self._lock:
                job.status, job.error, job.finished_at = "failed", str(exc), utcnow()
            return
        with self._lock:
            job.results, job.total, job.done = results, len(results), len(results)
            job.status, job.finished_at = "done", utcnow()
