"""probe_imap, probe_pop3, ImapMailbox and Pop3Mailbox against a real Dovecot 2.3.

Each test works as a user of its own, so the session-wide Dovecot's other users are untouched.
"""

from __future__ import annotations

import imaplib
import secrets
from datetime import date, timedelta
from email.utils import make_msgid

import pytest
from imapclient.response_parser import parse_fetch_response

from postroom.domain.checks import ErrorClass, Field, StepOutcome
from postroom.protocols.endpoints import LOOPBACK_CIDRS, Endpoint, NetworkPolicy, Secret
from postroom.protocols.imap import FETCH_ITEMS, ImapMailbox, probe_imap
from postroom.protocols.imapfetch import parse_bulk_fetch
from postroom.protocols.pop3 import Pop3Mailbox, probe_pop3
from postroom.testing.dovecot import DovecotServer

POLICY = NetworkPolicy(allowed_cidrs=LOOPBACK_CIDRS)


@pytest.fixture
def user(dovecot: DovecotServer) -> str:
    name = f"proto-{secrets.token_hex(4)}"
    dovecot.add_user(name, secrets.token_urlsafe(12))
    return name


def endpoint(
    dovecot: DovecotServer, service: str, user: str, password: str | None = None
) -> Endpoint:
    where = dovecot.endpoint_values()[service]
    return Endpoint(
        where.host,
        where.port,
        where.security,
        username=user,
        password=Secret(password if password is not None else dovecot.password(user)),
        cafile=str(dovecot.cafile),
        timeout_s=10.0,
    )


def message(subject: str) -> tuple[str, bytes]:
    message_id = make_msgid(domain="postroom.test")
    raw = (
        f"From: sender@example.test\r\nTo: someone@postroom.test\r\nSubject: {subject}\r\n"
        f"Message-ID: {message_id}\r\nDate: Mon, 1 Jan 2024 10:00:00 +0000\r\n\r\n"
        f"Body of {subject}.\r\n.a line with a leading dot\r\n"
    ).encode()
    return message_id, raw


@pytest.mark.parametrize("service", ["imap", "imap_starttls", "imaps"])
def test_probe_imap_succeeds(service: str, dovecot: DovecotServer, user: str) -> None:
    dovecot.create_folder(user, "Archive")
    result = probe_imap(
        endpoint(dovecot, service, user), policy=POLICY, folders=("INBOX", "Archive")
    )
    assert result.ok, (result.error_message, result.transcript)
    names = [s.name for s in result.steps if s.outcome is not StepOutcome.SKIPPED]
    assert names[-3:] == ["examine INBOX", "examine Archive", "logout"]
    assert "UIDVALIDITY" in result.steps[-2].message
    assert (result.tls is None) == (service == "imap")
    assert dovecot.password(user) not in str(result.to_dict())


@pytest.mark.parametrize("service", ["pop3", "pop3_starttls", "pop3s"])
def test_probe_pop3_succeeds(service: str, dovecot: DovecotServer, user: str) -> None:
    result = probe_pop3(endpoint(dovecot, service, user), policy=POLICY)
    assert result.ok, (result.error_message, result.transcript)
    assert [s.name for s in result.steps][-2:] == ["stat", "quit"]
    assert (result.tls is None) == (service == "pop3")
    assert dovecot.password(user) not in str(result.to_dict())


def test_wrong_password_is_auth_failed(dovecot: DovecotServer, user: str) -> None:
    imap = probe_imap(endpoint(dovecot, "imaps", user, "wrong-password"), policy=POLICY)
    pop3 = probe_pop3(endpoint(dovecot, "pop3s", user, "wrong-password"), policy=POLICY)
    for result in (imap, pop3):
        assert result.error_class is ErrorClass.AUTH_FAILED
        assert result.field is Field.PASSWORD
        assert "wrong-password" not in str(result.to_dict())


def test_missing_folder_is_reported(dovecot: DovecotServer, user: str) -> None:
    result = probe_imap(endpoint(dovecot, "imaps", user), policy=POLICY, folders=("Nope",))
    assert result.error_class is ErrorClass.UNEXPECTED_REPLY
    assert "Nope" in result.error_message


def test_imap_mailbox_fetch_and_after_import_actions(dovecot: DovecotServer, user: str) -> None:
    folder = "Incoming"
    raws = [message(f"m{i}")[1] for i in range(3)]
    dovecot.create_folder(user, folder)
    uids = [dovecot.append(user, folder, raw) for raw in raws]
    with ImapMailbox(endpoint(dovecot, "imap_starttls", user), policy=POLICY) as box:
        state = box.select(folder)
        assert state.exists == 3
        assert state.uidvalidity > 0
        fetched = list(box.fetch_after(folder, 0, batch_size=2))
        assert [m.uid for m in fetched] == uids
        assert [m.raw for m in fetched] == raws
        assert all(m.size == len(m.raw) for m in fetched)
        assert all(m.internaldate is not None and m.internaldate.tzinfo for m in fetched)
        assert all("\\Seen" not in m.flags for m in fetched)  # BODY.PEEK leaves \Seen alone
        assert list(box.fetch_after(folder, uids[-1])) == []  # `UID n:*` trap
        assert [m.uid for m in box.fetch_after(folder, uids[0])] == uids[1:]
        assert box.uids_since(folder, date.today() - timedelta(days=1)) == uids

        box.mark_seen([uids[0]])
        (first,) = [m for m in box.fetch_after(folder, 0) if m.uid == uids[0]]
        assert "\\Seen" in first.flags
        dovecot.create_folder(user, "Done")
        box.move([uids[1]], "Done")
        box.delete([uids[2]])
        assert [m.uid for m in box.fetch_after(folder, 0)] == [uids[0]]
    assert dovecot.folder_status(user, "Done")["MESSAGES"] == 1
    assert dovecot.folder_status(user, folder)["MESSAGES"] == 1


def test_pipelined_fetch_returns_every_message_once_in_order(
    dovecot: DovecotServer, user: str
) -> None:
    # Three batches in flight: Dovecot interleaves the answers of pipelined FETCHes, which a
    # reader that assigned answers by command lost (a batch's early messages went missing).
    raws = [message(f"m{i}")[1] + b"x" * (i * 997 % 20_000) for i in range(300)]
    uids = [dovecot.append(user, "INBOX", raw) for raw in raws]
    with ImapMailbox(endpoint(dovecot, "imaps", user), policy=POLICY) as box:
        box.select("INBOX", readonly=True)
        fetched = list(box.fetch_after("INBOX", 0, batch_size=7, ahead=3))
        assert [m.uid for m in fetched] == uids
        assert [m.raw for m in fetched] == raws
        # Leaving early with FETCHes in flight drops the connection rather than misreading.
        pending = box.fetch_after("INBOX", 0, batch_size=7, ahead=3)
        assert next(pending).uid == uids[0]
        pending.close()
        assert not box.is_open


def test_pop3_mailbox_uidl_retrieve_and_delete_at_quit(dovecot: DovecotServer, user: str) -> None:
    first_id, first = message("one")
    _second_id, second = message("two")
    dovecot.deliver(user, first)
    dovecot.deliver(user, second)
    with Pop3Mailbox(endpoint(dovecot, "pop3s", user), policy=POLICY) as box:
        listing = box.uidl()
        assert len(listing) == 2
        assert len({uid for _, uid in listing}) == 2
        number = next(n for n, _ in listing if first_id.encode() in box.retrieve(n))
        raw = box.retrieve(number)
        assert b"\r\n.a line with a leading dot\r\n" in raw  # dot-stuffing undone
        assert raw.endswith(b"\r\n")
        box.delete(number)
        assert len(box.uidl()) == 1  # a marked message is hidden for the rest of the session
        assert box.stat()[0] == 1
    with Pop3Mailbox(endpoint(dovecot, "pop3", user), policy=POLICY) as box:
        assert len(box.uidl()) == 1  # QUIT committed the deletion


def test_pop3_deletion_without_quit_is_not_committed(dovecot: DovecotServer, user: str) -> None:
    dovecot.deliver(user, message("kept")[1])
    box = Pop3Mailbox(endpoint(dovecot, "pop3s", user), policy=POLICY)
    box.open()
    box.delete(1)
    box.abort()  # the connection ends without QUIT
    with Pop3Mailbox(endpoint(dovecot, "pop3s", user), policy=POLICY) as again:
        assert len(again.uidl()) == 1


def test_bulk_fetch_parser_reads_live_dovecot_responses(dovecot: DovecotServer, user: str) -> None:
    """The narrow parser takes Dovecot's own bytes (flags, keywords, 8-bit, a body with
    parentheses and braces) and reads them as IMAPClient's general parser does."""
    raws = [message("plain")[1], b"Subject: caf\xc3\xa9 \xff\r\n\r\n(a) {3}\r\n)\r\n"]
    uids = [dovecot.append(user, "INBOX", raws[0], flags=["\\Seen", "$Label1"])]
    uids.append(dovecot.append(user, "INBOX", raws[1]))
    where = dovecot.endpoint_values()["imap"]
    with imaplib.IMAP4(where.host, where.port, timeout=10) as imap:
        imap.login(user, dovecot.password(user))
        imap.select("INBOX")
        typ, lines = imap.uid("FETCH", "1:*", FETCH_ITEMS)
    assert typ == "OK"
    narrow = parse_bulk_fetch(lines)
    general = parse_fetch_response(lines, False, True)
    assert narrow == {uid: {k: v for k, v in general[uid].items() if k != b"SEQ"} for uid in uids}
    assert [narrow[uid][b"BODY[]"] for uid in uids] == raws
    assert set(narrow[uids[0]][b"FLAGS"]) >= {b"\\Seen", b"$Label1"}
