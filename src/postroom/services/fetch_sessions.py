"""Logged-in IMAP connections kept between the fetches of an account.

An account fetched every minute would otherwise connect, start TLS and log in every time: a
third of an incremental sync on bench/inbound.py, and providers count logins (some throttle
an account that logs in too often). A connection is kept only

- for the endpoint it was opened with (changed settings or password: a new connection),
- while idle for less than `idle_s` (RFC 9051 §5.4: a server may log out a client idle for
  30 minutes; we stay well below), and for at most `limit` accounts (the least recently used
  go first),
- one per account: the account's fetch lease already makes its fetcher the only user.

POP3 connections are never kept: a POP3 session locks the maildrop, and deletions take effect
only at QUIT (RFC 1939 §8, §6).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from postroom.protocols.endpoints import Endpoint, NetworkPolicy
from postroom.protocols.imap import ImapMailbox


class ImapSessions:
    def __init__(
        self,
        policy: NetworkPolicy,
        *,
        idle_s: float = 300.0,
        limit: int = 100,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._policy = policy
        self._idle_s = idle_s
        self._limit = limit
        self._clock = clock
        self._lock = threading.Lock()
        self._kept: dict[int, tuple[ImapMailbox, float]] = {}  # oldest first

    def take(self, account_id: int, endpoint: Endpoint) -> tuple[ImapMailbox, bool]:
        """An open mailbox for the account, and whether it is a kept one (reused): the kept
        connection when it was opened for this same endpoint and has not idled too long,
        else a new one (opened: raises as ImapMailbox.open does)."""
        with self._lock:
            kept = self._kept.pop(account_id, None)
        if kept is not None:
            box, since = kept
            if box.is_open and box.endpoint == endpoint and self._clock() - since < self._idle_s:
                return box, True
            box.close()
        box = ImapMailbox(endpoint, policy=self._policy)
        box.open()
        return box, False

    def keep(self, account_id: int, box: ImapMailbox) -> None:
        """Keep `box` (if still open) for the account's next fetch."""
        if not box.is_open:
            return
        stale: list[ImapMailbox] = []
        with self._lock:
            if (replaced := self._kept.pop(account_id, None)) is not None:
                stale.append(replaced[0])
            self._kept[account_id] = (box, self._clock())
            while len(self._kept) > self._limit:  # the least recently kept first
                stale.append(self._kept.pop(next(iter(self._kept)))[0])
        for old in stale:
            if old is not box:
                old.close()

    def expire(self) -> None:
        """Log out of the connections idle for too long (the worker calls this every tick)."""
        now = self._clock()
        with self._lock:
            old = [a for a, (_, since) in self._kept.items() if now - since >= self._idle_s]
            boxes = [self._kept.pop(a)[0] for a in old]
        for box in boxes:
            box.close()

    def close(self) -> None:
        """Log out of every kept connection."""
        with self._lock:
            boxes = [box for box, _ in self._kept.values()]
            self._kept.clear()
        for box in boxes:
            box.close()
