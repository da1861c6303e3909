"""Many delivery connections served by one thread.

The work of one connection is a generator of *steps* (services/delivery.py). It yields

- `Wait(sock, timeout_s)`: resume me when `sock` is readable (the server's answer is
  arriving), or throw ProtocolTimeout into me after `timeout_s`;
- `Call(fn, *args)`: run this blocking function (connect and log in, QUIT, the sendmail
  binary) and resume me with its result, or throw its exception into me;

and returns its results. `run_inline` drives one generator in the calling thread (immediate
mode, tests); `Multiplexer` drives many at once in one thread, the waits in one selector and the
calls in a small thread pool, so a slow server holds up only its own connection.

Why not a thread per connection: the sender is CPU-bound in Python, and with a thread per
connection the GIL changed hands at every send and every receive (context switches, futex
calls). Measured on bench/outbound.py (2 cores, smtp-sink, 4 connections): one thread serving
all connections used about 20 % less CPU per message than four threads, and sent more.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import time
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from queue import SimpleQueue
from typing import Any, Generic, TypeVar

from postroom.errors import ProtocolTimeout

R = TypeVar("R")


@dataclass(frozen=True, slots=True)
class Wait:
    """Resume when `sock` is readable; ProtocolTimeout after `timeout_s`."""

    sock: socket.socket
    timeout_s: float


class Call:
    """A blocking call to run outside the multiplexing thread."""

    __slots__ = ("args", "fn", "kwargs")

    def __init__(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        self.fn, self.args, self.kwargs = fn, args, kwargs

    def __call__(self) -> Any:
        return self.fn(*self.args, **self.kwargs)


Steps = Generator[Wait | Call, Any, R]


def run_inline(steps: Steps[R]) -> R:
    """Drive `steps` in this thread: a Wait simply resumes (the reads that follow block under
    the socket's own timeout), a Call runs here."""
    value: Any = None
    error: BaseException | None = None
    while True:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as done:
            result: R = done.value
            return result
        value, error = None, None
        if isinstance(step, Call):
            try:
                value = step()
            except Exception as exc:
                error = exc


class Multiplexer(Generic[R]):
    """Drives step generators in the thread that calls `run`; `len()` is how many are active.

    Each finished generator is reported once, with its result or the exception that ended it.
    `close()` releases the selector; generators still active are closed (GeneratorExit).
    """

    def __init__(self, pool: Executor) -> None:
        self._pool = pool
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        self._ready: deque[tuple[Steps[R], Any, BaseException | None]] = deque()
        self._waits: dict[Steps[R], tuple[socket.socket, float]] = {}
        self._called: SimpleQueue[tuple[Steps[R], Future[Any]]] = SimpleQueue()
        self._tags: dict[Steps[R], Any] = {}

    def __len__(self) -> int:
        return len(self._tags)

    def add(self, steps: Steps[R], tag: Any = None) -> None:
        """Start driving `steps`; `tag` comes back with its result."""
        self._tags[steps] = tag
        self._ready.append((steps, None, None))

    def run(self, timeout_s: float) -> list[tuple[Any, R | BaseException]]:
        """Advance whatever can move until at least one generator has finished or
        `timeout_s` has passed; returns (tag, result or exception) of those finished."""
        finished: list[tuple[Any, R | BaseException]] = []
        end = time.monotonic() + timeout_s
        while True:
            while self._ready:
                self._advance(*self._ready.popleft(), finished)
            now = time.monotonic()
            if finished or not self._tags or now >= end:
                return finished
            expiry = min((until for _, until in self._waits.values()), default=end)
            for key, _ in self._selector.select(max(min(end, expiry) - now, 0.0)):
                if key.data is None:
                    self._drain_calls()
                else:
                    self._resume(key.data, None)
            now = time.monotonic()
            for steps, (_, until) in list(self._waits.items()):
                if until <= now:
                    self._resume(steps, ProtocolTimeout("no answer in time"))

    def close(self) -> None:
        for steps in list(self._tags):
            steps.close()
        self._tags.clear()
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    def _advance(
        self,
        steps: Steps[R],
        value: Any,
        error: BaseException | None,
        finished: list[tuple[Any, R | BaseException]],
    ) -> None:
        try:
            step = steps.throw(error) if error is not None else steps.send(value)
        except StopIteration as done:
            finished.append((self._tags.pop(steps), done.value))
            return
        except BaseException as exc:  # a bug in one connection's work must not stop the others
            finished.append((self._tags.pop(steps), exc))
            if not isinstance(exc, Exception):
                raise  # KeyboardInterrupt, SystemExit: that one is over, the caller decides
            return
        if isinstance(step, Call):
            future = self._pool.submit(step)
            future.add_done_callback(lambda f: self._called_back(steps, f))
        else:
            self._selector.register(step.sock, selectors.EVENT_READ, steps)
            self._waits[steps] = (step.sock, time.monotonic() + step.timeout_s)

    def _resume(self, steps: Steps[R], error: BaseException | None) -> None:
        sock, _ = self._waits.pop(steps)
        self._selector.unregister(sock)
        self._ready.append((steps, None, error))

    def _called_back(self, steps: Steps[R], future: Future[Any]) -> None:
        """In the pool's thread: hand the finished call over and wake the selector."""
        self._called.put((steps, future))
        # Full (a wake is pending anyway) or closed (nobody waits any more): nothing to do.
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    def _drain_calls(self) -> None:
        with contextlib.suppress(BlockingIOError):
            while self._wake_r.recv(4096):
                pass
        while not self._called.empty():
            steps, future = self._called.get()
            error = future.exception()
            self._ready.append((steps, None if error else future.result(), error))
