"""IMAP fetching against real Dovecot: incremental, first import, UIDVALIDITY resync,
after-import actions, dedupe within and across accounts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from postroom.domain.accounts import AfterImport
from postroom.domain.inbox import InboxQuery
from postroom.domain.people import Actor
from postroom.storage.audit import LogFilter
from postroom.testing.dovecot import DovecotServer
from postroom.wiring import Container
from tests.integration.inbox.conftest import MakeAccount

SYSTEM = Actor.system()


def mail(tag: str, *, message_id: bool = True, body: str = "body") -> bytes:
    mid = f"Message-ID: <{tag}@test.example>\r\n" if message_id else ""
    return f"From: Sender <s@example.org>\r\nSubject: {tag}\r\n{mid}\r\n{body}\r\n".encode()


def subjects(container: Container, account_id: int) -> list[str]:
    page = container.inbox.list(SYSTEM, account_id, InboxQuery(limit=500, descending=False))
    return sorted(m.subject for m in page.items)


@pytest.mark.parametrize("service", ["imap", "imap_starttls", "imaps"])
def test_incremental_fetch_from_now_on(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer, service: str
) -> None:
    account_id, user = make_account(service)
    dovecot.deliver(user, mail("before"))
    first = container.fetching.fetch_account(account_id)
    assert first.ok, first.error
    assert first.fetched == 0  # default import start: only mail arriving from now on

    for tag in ("one", "two"):
        dovecot.deliver(user, mail(tag))
    second = container.fetching.fetch_account(account_id)
    assert (second.ok, second.stored, second.duplicates) == (True, 2, 0)
    dovecot.deliver(user, mail("three"))
    third = container.fetching.fetch_account(account_id)
    assert third.stored == 1
    idle = container.fetching.fetch_account(account_id)
    assert (idle.stored, idle.duplicates) == (0, 0)  # `UID n:*` returning the last one is dropped
    assert subjects(container, account_id) == ["one", "three", "two"]
    status = container.fetching.status(account_id)
    assert status["last_fetch_count"] == 0
    assert status["consecutive_failures"] == 0
    assert status["last_fetch_ok_at"] is not None


def test_fetch_since_imports_existing_mail(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    user = "since" + datetime.now(UTC).strftime("%H%M%S%f")
    dovecot.add_user(user, "pw-since-1")
    for tag in ("a", "b", "c"):
        dovecot.deliver(user, mail(tag))
    account_id, _ = make_account(user=user, fetch_since=datetime.now(UTC) - timedelta(hours=1))
    report = container.fetching.fetch_account(account_id)
    assert report.stored == 3
    assert subjects(container, account_id) == ["a", "b", "c"]


def test_future_fetch_since_skips_older_mail(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    user = "later" + datetime.now(UTC).strftime("%H%M%S%f")
    dovecot.add_user(user, "pw-later-1")
    dovecot.deliver(user, mail("old"))
    account_id, _ = make_account(user=user, fetch_since=datetime.now(UTC) + timedelta(hours=1))
    report = container.fetching.fetch_account(account_id)
    assert report.stored == 0


def test_uidvalidity_change_resyncs_without_duplicates(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = make_account(folders=("Work",))
    dovecot.create_folder(user, "Work")
    assert container.fetching.fetch_account(account_id).ok
    dovecot.append(user, "Work", mail("w1"))
    dovecot.append(user, "Work", mail("w2", message_id=False))
    assert container.fetching.fetch_account(account_id).stored == 2
    before = dovecot.folder_status(user, "Work")["UIDVALIDITY"]

    dovecot.delete_folder(user, "Work")
    dovecot.create_folder(user, "Work")
    assert dovecot.folder_status(user, "Work")["UIDVALIDITY"] != before
    dovecot.append(user, "Work", mail("w1"))
    dovecot.append(user, "Work", mail("w2", message_id=False))
    dovecot.append(user, "Work", mail("w3"))
    report = container.fetching.fetch_account(account_id)
    assert (report.stored, report.duplicates) == (1, 2)
    assert subjects(container, account_id) == ["w1", "w2", "w3"]
    again = container.fetching.fetch_account(account_id)
    assert (again.stored, again.duplicates) == (0, 0)


def test_after_import_mark_seen(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = make_account(after_import=AfterImport.MARK_SEEN)
    container.fetching.fetch_account(account_id)
    dovecot.deliver(user, mail("seen-me"))
    assert dovecot.folder_status(user)["UNSEEN"] == 1
    assert container.fetching.fetch_account(account_id).stored == 1
    assert dovecot.folder_status(user)["UNSEEN"] == 0
    assert dovecot.folder_status(user)["MESSAGES"] == 1


def test_after_import_keep_leaves_unseen(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = make_account()
    container.fetching.fetch_account(account_id)
    dovecot.deliver(user, mail("keep-me"))
    assert container.fetching.fetch_account(account_id).stored == 1
    assert dovecot.folder_status(user) | {"UIDNEXT": 0, "UIDVALIDITY": 0} == {
        "MESSAGES": 1,
        "UNSEEN": 1,
        "UIDNEXT": 0,
        "UIDVALIDITY": 0,
    }
    # Read-only (EXAMINE): the mail is even still \Recent for the user's own mail client.
    assert dovecot.recent(user) == 1


def test_after_import_move(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = make_account(after_import=AfterImport.MOVE, move_to_folder="Imported")
    dovecot.create_folder(user, "Imported")
    container.fetching.fetch_account(account_id)
    dovecot.deliver(user, mail("move-me"))
    assert container.fetching.fetch_account(account_id).stored == 1
    assert dovecot.folder_status(user)["MESSAGES"] == 0
    assert dovecot.find_message(user, "<move-me@test.example>", folder="Imported") is not None


def test_after_import_delete(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = make_account(after_import=AfterImport.DELETE)
    container.fetching.fetch_account(account_id)
    dovecot.deliver(user, mail("delete-me"))
    assert container.fetching.fetch_account(account_id).stored == 1
    assert dovecot.folder_status(user)["MESSAGES"] == 0
    assert subjects(container, account_id) == ["delete-me"]


def test_same_message_id_twice_in_one_mailbox_and_in_two_accounts(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    first_id, user = make_account()
    second_id, other = make_account()
    for account_id in (first_id, second_id):
        container.fetching.fetch_account(account_id)
    for target in (user, user, other):
        dovecot.deliver(target, mail("twice"))
    report = container.fetching.fetch_account(first_id)
    assert (report.stored, report.duplicates) == (1, 1)
    assert container.fetching.fetch_account(second_id).stored == 1
    assert subjects(container, first_id) == ["twice"]
    assert subjects(container, second_id) == ["twice"]


def test_inactive_account_is_not_fetched_and_keeps_its_mail(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = make_account()
    assert container.fetching.run_due("w1", wait=True) == 1  # first fetch: sets the start
    dovecot.deliver(user, mail("kept"))
    container.fetching.fetch_account(account_id)
    container.accounts.transition(SYSTEM, account_id, "deactivate")
    dovecot.deliver(user, mail("not-fetched"))
    assert container.fetching.run_due("w1", wait=True) == 0
    with pytest.raises(Exception, match="inactive"):
        container.fetching.fetch_account(account_id)
    assert subjects(container, account_id) == ["kept"]


def test_run_due_claims_each_account_once_until_next_interval(
    container: Container, make_account: MakeAccount
) -> None:
    ids = {make_account()[0] for _ in range(3)}
    assert container.fetching.run_due("w1", wait=True) == 3
    assert container.fetching.run_due("w2", wait=True) == 0  # next_fetch_at is in the future
    for account_id in ids:
        status = container.fetching.status(account_id)
        assert status["next_fetch_at"] > status["last_fetch_at"]


def test_run_due_in_background_threads(container: Container, make_account: MakeAccount) -> None:
    account_id, _ = make_account()
    assert container.fetching.run_due("w1") == 1
    container.fetching.shutdown(wait=True)
    assert container.fetching.status(account_id)["last_fetch_ok_at"] is not None


def test_auth_failures_switch_fetching_off_and_tell_admins(
    container: Container, make_account: MakeAccount
) -> None:
    account_id, _ = make_account(password="wrong-password")
    for attempt in range(3):
        report = container.fetching.fetch_account(account_id)
        assert report.auth_failure, report.error
        assert bool(report.disabled_reason) == (attempt == 2)
    status = container.fetching.status(account_id)
    assert status["enabled"] is False
    assert status["consecutive_auth_failures"] == 3
    assert container.fetching.run_due("w1", wait=True) == 0
    notes = container.log.notifications(SYSTEM)
    assert any(n.account_id == account_id and "switched off" in n.message for n in notes)
    entries = container.log.query(SYSTEM, LogFilter(account_id=account_id)).items
    assert any(e.level == "error" and e.action == "auto_disable" for e in entries)
    assert all("wrong-password" not in e.message for e in entries)


def test_a_kept_connection_is_reused_and_replaced_when_the_server_dropped_it(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = make_account("imaps")
    assert container.fetching.fetch_account(account_id).ok
    logins = dovecot.log.read_text().count(f"Login: user=<{user}>")
    dovecot.deliver(user, mail("kept"))
    assert container.fetching.fetch_account(account_id).stored == 1
    assert dovecot.log.read_text().count(f"Login: user=<{user}>") == logins

    dovecot.kick(user)  # the kept connection is gone; the next fetch logs in again
    dovecot.deliver(user, mail("after kick"))
    report = container.fetching.fetch_account(account_id)
    assert (report.ok, report.stored) == (True, 1), report.error
    assert dovecot.log.read_text().count(f"Login: user=<{user}>") == logins + 1
    assert subjects(container, account_id) == ["after kick", "kept"]
