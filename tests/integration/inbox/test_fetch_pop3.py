"""POP3 fetching against real Dovecot: UIDL cursor, keep or delete, first import."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postroom.domain.accounts import AfterImport
from postroom.domain.inbox import InboxQuery
from postroom.domain.people import Actor
from postroom.testing.dovecot import DovecotServer
from postroom.wiring import Container
from tests.integration.inbox.conftest import MakeAccount
from tests.integration.inbox.test_fetch_imap import mail


def stored(container: Container, account_id: int) -> list[str]:
    page = container.inbox.list(Actor.system(), account_id, InboxQuery(limit=500))
    return sorted(m.subject for m in page.items)


@pytest.mark.parametrize("service", ["pop3", "pop3_starttls", "pop3s"])
def test_uidl_cursor_keep_on_server(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer, service: str
) -> None:
    account_id, user = make_account(service)
    dovecot.deliver(user, mail("before"))
    assert container.fetching.fetch_account(account_id).fetched == 0  # from now on
    dovecot.deliver(user, mail("p1"))
    dovecot.deliver(user, mail("p2", message_id=False))
    report = container.fetching.fetch_account(account_id)
    assert (report.ok, report.stored) == (True, 2), report.error
    again = container.fetching.fetch_account(account_id)
    assert (again.stored, again.duplicates) == (0, 0)  # UIDLs already seen: not even retrieved
    assert dovecot.folder_status(user)["MESSAGES"] == 3
    assert stored(container, account_id) == ["p1", "p2"]


def test_delete_after_import(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = make_account("pop3", keep_on_server=False, after_import=AfterImport.DELETE)
    dovecot.deliver(user, mail("left-alone"))
    container.fetching.fetch_account(account_id)
    dovecot.deliver(user, mail("gone"))
    assert container.fetching.fetch_account(account_id).stored == 1
    # The message present at the first fetch was never imported, so it is not deleted.
    assert dovecot.folder_status(user)["MESSAGES"] == 1
    assert stored(container, account_id) == ["gone"]


def test_fetch_since_reads_the_date_header(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    user = "pops" + datetime.now(UTC).strftime("%H%M%S%f")
    dovecot.add_user(user, "pw-pop-since")
    old = b"Subject: old\r\nDate: Mon, 01 Jan 2001 00:00:00 +0000\r\n\r\nx\r\n"
    dovecot.deliver(user, old)
    dovecot.deliver(user, mail("recent"))  # no Date header: imported
    account_id, _ = make_account(
        "pop3", user=user, fetch_since=datetime.now(UTC) - timedelta(days=1)
    )
    report = container.fetching.fetch_account(account_id)
    assert (report.stored, report.skipped) == (1, 1)
    assert stored(container, account_id) == ["recent"]
