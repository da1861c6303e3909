"""A fetcher process killed with SIGKILL in the middle of a fetch, then restarted: every
message ends up stored exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postroom.domain.inbox import InboxQuery
from postroom.domain.people import Actor
from postroom.testing.dovecot import DovecotServer
from postroom.wiring import Container
from tests.integration.inbox.conftest import MakeAccount
from tests.integration.inbox.test_fetch_imap import mail

# Waits for the dead fetcher's lease to expire (Conflict until then), then fetches. With
# "slow" it pauses after each committed batch, so that a kill lands in the middle of the fetch
# however fast the machine (a fast run had finished all the mail before the kill came).
FETCHER = """
import sys, time
from postroom.errors import Conflict
from postroom.wiring import build
container = build()
pause = (lambda done, total: time.sleep(0.02)) if sys.argv[2:] == ["slow"] else None
while True:
    try:
        report = container.fetching.fetch_account(int(sys.argv[1]), pause)
        break
    except Conflict:
        time.sleep(0.1)
print(report.ok, report.stored, report.duplicates, report.error)
"""
COUNT = 240
# ~40 KB a message: a sync of them all takes long enough (hundreds of milliseconds) for the
# kill below to land inside it on any machine; with tiny messages a fast run finished first.
PADDING = "padding to make each fetch take a while\r\n" * 1000


def fetcher(
    tmp_path: Path, container: Container, account_id: int, *, slow: bool = False
) -> subprocess.Popen[bytes]:
    env = os.environ | {
        "POSTROOM_DATABASE_URL": container.settings.effective_database_url,
        "POSTROOM_VAR_DIR": str(tmp_path),
        "POSTROOM_ENV": "test",
        "POSTROOM_CA_FILE": str(container.settings.ca_file),
        "POSTROOM_FETCH_BATCH_SIZE": "4",
        "POSTROOM_WORKER_LEASE_S": "1",
    }
    return subprocess.Popen(
        [sys.executable, "-c", FETCHER, str(account_id), *(["slow"] if slow else [])],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def stored_count(container: Container, account_id: int) -> int:
    return container.inbox.list(Actor.system(), account_id, InboxQuery(limit=1)).total


@pytest.mark.slow
def test_killed_fetcher_loses_and_duplicates_nothing(
    tmp_path: Path, container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = make_account()
    assert container.fetching.fetch_account(account_id).ok  # sets the import start
    for i in range(COUNT):
        dovecot.deliver(user, mail(f"m{i:04d}", message_id=i % 3 != 0, body=f"n{i}\r\n{PADDING}"))

    kills_mid_fetch = 0
    for _ in range(3):
        proc = fetcher(tmp_path, container, account_id, slow=True)
        start = stored_count(container, account_id)
        # Killed once the first batch (4 messages) is in: the rest are mid-fetch.
        while proc.poll() is None and stored_count(container, account_id) < start + 4:
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()  # waits, and closes the pipes
        if proc.returncode == -signal.SIGKILL and stored_count(container, account_id) < COUNT:
            kills_mid_fetch += 1
    assert kills_mid_fetch >= 1

    final = fetcher(tmp_path, container, account_id)
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err.decode()
    assert out.split()[0] == b"True", out
    page = container.inbox.list(Actor.system(), account_id, InboxQuery(limit=500))
    assert page.total == COUNT
    assert sorted(m.subject for m in page.items) == [f"m{i:04d}" for i in range(COUNT)]
