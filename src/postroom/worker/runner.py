"""The worker: claim → deliver, in a loop, with a heartbeat and a graceful stop.

The worker only schedules; the delivery service decides what a reply means. Up to
`concurrency` connections are served by ONE thread (services/multiplex.py): their answers are
awaited together in a selector, and only what blocks for long (connecting, QUIT, the sendmail
binary, servers without PIPELINING) runs in a small helper pool. Many workers may run against
one PostgreSQL database (the claim hands out disjoint leases); on SQLite one worker.

Stopping: SIGTERM/SIGINT (or `stop()`) sets a flag; chunks in progress finish the message they
are sending, release the rest of their lease, and the worker records itself as stopped. A
SIGKILL leaves leases behind; they expire after `worker_lease_s` and the messages are claimed
again (at-least-once, same Message-ID).
"""

from __future__ import annotations

import logging
import math
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from types import FrameType
from typing import Any

from postroom.services.multiplex import Multiplexer
from postroom.storage.types import utcnow
from postroom.wiring import freeze_long_lived

log = logging.getLogger("postroom.worker")


class Worker:
    """`container` is a wiring.Container with `outbox_repo`, `delivery` and optionally
    `fetching` (whose `run_due(worker_name)` is called each tick)."""

    def __init__(self, container: Any, name: str | None = None, concurrency: int = 4) -> None:
        self.container = container
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.concurrency = max(concurrency, 1)
        self.stopping = threading.Event()
        self.delivered = 0
        self.thread: threading.Thread | None = None
        settings = container.settings
        self._batch = settings.worker_batch_size
        self._lease_s = float(settings.worker_lease_s)
        self._poll_s = settings.worker_poll_s
        # Leases are extended at least three times per lease; liveness shows every few seconds.
        self._beat_s = min(self._lease_s / 3, 5.0)
        self._beat_at = self._fetched_at = -math.inf
        # A stop waits for the message being sent; its read timeout bounds that.
        self.join_timeout_s = self._lease_s

    def install_signal_handlers(self) -> None:
        """SIGTERM and SIGINT stop gracefully (main thread only, as Python requires)."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            log.info("worker %s: signal %s, stopping", self.name, signum)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def stop(self) -> None:
        self.stopping.set()

    def run(self, max_idle_ticks: int | None = None) -> None:
        """Loop until stopped (or, for tests and benches, after `max_idle_ticks` empty ticks).

        Up to `concurrency` chunks are in flight; whenever one finishes, a new batch is claimed
        for the free connection at once, so the others never wait for the slowest chunk.
        """
        idle = 0
        freeze_long_lived()  # what exists now lives as long as the worker
        self._heartbeat()
        with ThreadPoolExecutor(
            self.concurrency, thread_name_prefix=f"deliver-{self.name}"
        ) as pool:
            chunks: Multiplexer[list[Any]] = Multiplexer(pool)
            try:
                while not self.stopping.is_set():
                    self._chores()
                    free = self.concurrency - len(chunks)
                    if free > 0:
                        self._dispatch(chunks, free)
                    if len(chunks):
                        idle = 0
                        self._collect(chunks.run(self._beat_s))
                        continue
                    idle += 1
                    if max_idle_ticks is not None and idle >= max_idle_ticks:
                        break
                    self.stopping.wait(self._poll_s)
            finally:
                self.stopping.set()  # chunks release what they did not start …
                while len(chunks):  # … and finish the message in progress
                    self._collect(chunks.run(self._beat_s))
                chunks.close()
                self._stopped()

    def _chores(self) -> None:
        """Heartbeat (which keeps the leases of long chunks alive) and due fetches, each at
        most once per interval however often chunks finish."""
        now = time.monotonic()
        if now - self._beat_at >= self._beat_s:
            self._heartbeat()
        fetching = getattr(self.container, "fetching", None)
        if fetching is not None and now - self._fetched_at >= self._poll_s:
            self._fetched_at = now
            try:
                fetching.run_due(self.name)
            except Exception:  # a fetch problem must never stop delivery
                log.exception("worker %s: fetching failed", self.name)

    def _dispatch(self, chunks: Multiplexer[list[Any]], free: int) -> None:
        """Claim a batch for `free` connections and start its chunks."""
        delivery = self.container.delivery
        batch = delivery.claim(self.name, self._batch * free, self._lease_s)
        for chunk in delivery.plan(batch, self.name, free):
            chunks.add(delivery.steps(chunk, self.name, self.stopping))

    def _collect(self, finished: list[tuple[Any, list[Any] | BaseException]]) -> None:
        for _, result in finished:
            if isinstance(result, BaseException):
                log.error("worker %s: chunk failed", self.name, exc_info=result)
            else:
                self.delivered += len(result)

    def _heartbeat(self) -> None:
        self._beat_at = time.monotonic()
        now = utcnow()
        with self.container.engine.begin() as conn:
            repo = self.container.outbox_repo
            repo.heartbeat(conn, self.name, socket.gethostname(), os.getpid(), now, self.delivered)
            repo.extend_leases(conn, self.name, now + timedelta(seconds=self._lease_s))

    def _stopped(self) -> None:
        """Release every lease left and record the final count and the stop."""
        now, repo = utcnow(), self.container.outbox_repo
        with self.container.engine.begin() as conn:
            repo.release_all(conn, self.name, now)
            repo.heartbeat(conn, self.name, socket.gethostname(), os.getpid(), now, self.delivered)
            repo.worker_stopped(conn, self.name, now)


def start_in_thread(
    container: Any, name: str | None = None, concurrency: int = 2
) -> Callable[[], None]:
    """Run a worker in a daemon thread (embedded in `postroom serve`).

    Returns the function that stops it gracefully and waits for it (leases released).
    """
    worker = Worker(container, name, concurrency)
    thread = threading.Thread(target=worker.run, name=f"worker-{worker.name}", daemon=True)
    worker.thread = thread
    thread.start()

    def stop() -> None:
        worker.stop()
        thread.join(timeout=worker.join_timeout_s)

    return stop
