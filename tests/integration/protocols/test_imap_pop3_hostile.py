"""IMAP and POP3 failure classes against scripted peers (success runs against real Dovecot)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from postroom import errors
from postroom.domain.accounts import Security
from postroom.domain.checks import ErrorClass, Field
from postroom.protocols.endpoints import NetworkPolicy
from postroom.protocols.imap import ImapMailbox, probe_imap
from postroom.protocols.pop3 import Pop3Mailbox, probe_pop3
from postroom.testing.peers import SILENT, Script, ScriptedPeer
from tests.integration.protocols.support import PASSWORD, MakeEndpoint

IMAP_CAPABILITY = b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n"
IMAP_LOGOUT = b"* BYE bye\r\n{tag} OK done\r\n"


def imap_script(login: bytes, capability: bytes = IMAP_CAPABILITY, **kw: object) -> Script:
    return Script(
        greeting=kw.pop("greeting", b"* OK scripted IMAP ready\r\n"),  # type: ignore[arg-type]
        tagged=True,
        replies=(
            (b"CAPABILITY", capability),
            (b"LOGIN", login),
            (
                b"EXAMINE",
                b"* 3 EXISTS\r\n* OK [UIDVALIDITY 42] v\r\n* OK [UIDNEXT 7] n\r\n"
                b"{tag} OK [READ-ONLY] done\r\n",
            ),
            (
                b"SELECT",
                b"* 3 EXISTS\r\n* OK [UIDVALIDITY 42] v\r\n* OK [UIDNEXT 7] n\r\n"
                b"{tag} OK [READ-WRITE] done\r\n",
            ),
            (b"UID SEARCH", b"* SEARCH 6\r\n{tag} OK done\r\n"),
            (b"UID FETCH", b"* 3 FETCH (UID 6 RFC822.SIZE 120)\r\n{tag} OK done\r\n"),
            (b"LOGOUT", IMAP_LOGOUT),
        ),
        default=b"{tag} BAD unknown command\r\n",
    )


def test_imap_probe_success_on_a_scripted_server(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with ScriptedPeer(imap_script(b"{tag} OK logged in\r\n")) as peer:
        result = probe_imap(make_endpoint(peer.port, auth=True), policy=policy)
    assert result.ok, result.error_message
    examine = next(s for s in result.steps if s.name == "examine INBOX")
    assert "3 messages, UIDVALIDITY 42, UIDNEXT 7" in examine.message


def test_imap_login_refused_is_auth_failed_and_password_redacted(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    script = imap_script(b"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
    with ScriptedPeer(script) as peer:
        result = probe_imap(make_endpoint(peer.port, auth=True), policy=policy)
        assert any(PASSWORD.encode() in line for line in peer.lines)  # it was really sent
    assert result.error_class is ErrorClass.AUTH_FAILED
    assert result.field is Field.PASSWORD
    assert PASSWORD not in json.dumps(result.to_dict())
    assert any(e.text.endswith("LOGIN alice ***") for e in result.transcript)


@pytest.mark.parametrize(
    ("greeting", "expected", "field"),
    [
        (b"220 smtp.example.test ESMTP\r\n", ErrorClass.PROTOCOL_ERROR, Field.PORT),
        (b"* BYE too many connections\r\n", ErrorClass.UNEXPECTED_REPLY, None),
    ],
)
def test_imap_bad_greeting(
    greeting: bytes,
    expected: ErrorClass,
    field: Field | None,
    make_endpoint: MakeEndpoint,
    policy: NetworkPolicy,
) -> None:
    with ScriptedPeer(imap_script(b"{tag} OK\r\n", greeting=greeting)) as peer:
        result = probe_imap(make_endpoint(peer.port, auth=True), policy=policy)
    assert result.error_class is expected
    assert result.field == field


def test_imap_silent_server_times_out(make_endpoint: MakeEndpoint, policy: NetworkPolicy) -> None:
    with ScriptedPeer(Script(greeting=SILENT)) as peer:
        endpoint = make_endpoint(peer.port, auth=True, timeout_s=60.0)
        result = probe_imap(endpoint, policy=policy, deadline_s=0.5)
    assert result.error_class is ErrorClass.TIMEOUT


def test_imap_starttls_not_offered(make_endpoint: MakeEndpoint, policy: NetworkPolicy) -> None:
    with ScriptedPeer(imap_script(b"{tag} OK\r\n")) as peer:
        result = probe_imap(make_endpoint(peer.port, Security.STARTTLS, auth=True), policy=policy)
        assert not any(b"LOGIN" in line for line in peer.lines)  # no password in plaintext
    assert result.error_class is ErrorClass.STARTTLS_UNAVAILABLE


def test_imap_logindisabled_is_auth_unsupported(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    capability = b"* CAPABILITY IMAP4rev1 LOGINDISABLED\r\n{tag} OK done\r\n"
    with ScriptedPeer(imap_script(b"{tag} OK\r\n", capability)) as peer:
        result = probe_imap(make_endpoint(peer.port, auth=True), policy=policy)
    assert result.error_class is ErrorClass.AUTH_UNSUPPORTED
    assert result.field is Field.SECURITY


def test_imap_mailbox_open_raises_auth_failed(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    script = imap_script(b"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n")
    with ScriptedPeer(script) as peer, pytest.raises(errors.AuthFailed):
        ImapMailbox(make_endpoint(peer.port, auth=True), policy=policy).open()


def test_imap_fetch_after_drops_the_cursor_uid(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    """`UID FETCH 7:* (RFC822.SIZE)` answers with the highest UID (6) although it is below 7;
    no body is fetched."""
    with ScriptedPeer(imap_script(b"{tag} OK logged in\r\n")) as peer:
        with ImapMailbox(make_endpoint(peer.port, auth=True), policy=policy) as box:
            assert box.select("INBOX").uidvalidity == 42
            assert list(box.fetch_after("INBOX", 6)) == []
        fetches = [line.upper() for line in peer.lines if b"FETCH" in line.upper()]
        assert fetches
        assert not any(b"BODY" in line for line in fetches)


def test_imap_fetch_after_falls_back_to_the_general_parser(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    """A server with another item order and an unsolicited flag change mid-response: the
    narrow parser refuses it and IMAPClient's general parser reads the same bytes."""
    body = b"Subject: x\r\n\r\n(y) {1}\r\n"
    fetch = (
        b"* 1 FETCH (RFC822.SIZE %d UID 5 BODY[] {%d}\r\n%s FLAGS (\\Seen))\r\n"
        b"* 3 FETCH (FLAGS (\\Flagged))\r\n"
        b'* 2 FETCH (UID 6 FLAGS () INTERNALDATE "01-Dec-2026 20:33:00 +0000" '
        b"RFC822.SIZE %d BODY[] {%d}\r\n%s)\r\n{tag} OK done\r\n"
    ) % (len(body), len(body), body, len(body), len(body), body)
    sizes = (
        b"* 1 FETCH (UID 5 RFC822.SIZE 9)\r\n* 2 FETCH (UID 6 RFC822.SIZE 9)\r\n{tag} OK done\r\n"
    )
    base = imap_script(b"{tag} OK logged in\r\n")
    script = replace(
        base, replies=((b"UID FETCH 5,6 ", fetch), (b"UID FETCH 1:* ", sizes), *base.replies)
    )
    with (
        ScriptedPeer(script) as peer,
        ImapMailbox(make_endpoint(peer.port, auth=True), policy=policy) as box,
    ):
        fetched = list(box.fetch_after("INBOX", 0))
    assert [(m.uid, m.raw, m.flags) for m in fetched] == [(5, body, ("\\Seen",)), (6, body, ())]
    assert fetched[0].internaldate is None
    assert fetched[1].internaldate is not None
    assert fetched[1].internaldate.tzinfo is not None


POP3_BASE = (
    (b"CAPA", b"+OK\r\nUSER\r\nUIDL\r\n.\r\n"),
    (b"USER", b"+OK\r\n"),
    (b"STAT", b"+OK 2 320\r\n"),
    (b"UIDL", b"+OK\r\n1 uid-one\r\n2 uid-two\r\n.\r\n"),
    (b"RETR", b"+OK\r\nSubject: x\r\n\r\n..starts with a dot\r\nend\r\n.\r\n"),
    (b"DELE", b"+OK marked\r\n"),
    (b"QUIT", b"+OK bye\r\n"),
)


def pop3_script(password_reply: bytes, greeting: bytes = b"+OK scripted POP3\r\n") -> Script:
    return Script(
        greeting=greeting,
        replies=((b"PASS", password_reply), *POP3_BASE),
        default=b"-ERR unknown command\r\n",
    )


def test_pop3_probe_success_on_a_scripted_server(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with ScriptedPeer(pop3_script(b"+OK logged in\r\n")) as peer:
        result = probe_pop3(make_endpoint(peer.port, auth=True), policy=policy)
    assert result.ok, result.error_message
    assert next(s for s in result.steps if s.name == "stat").message == "2 messages, 320 bytes"


def test_pop3_wrong_password_is_auth_failed_and_redacted(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with ScriptedPeer(pop3_script(b"-ERR [AUTH] Authentication failed.\r\n")) as peer:
        result = probe_pop3(make_endpoint(peer.port, auth=True), policy=policy)
    assert result.error_class is ErrorClass.AUTH_FAILED
    assert result.field is Field.PASSWORD
    assert PASSWORD not in json.dumps(result.to_dict())
    assert any(e.text == "PASS ***" for e in result.transcript)


@pytest.mark.parametrize(
    ("greeting", "expected"),
    [
        (b"* OK this is IMAP\r\n", ErrorClass.PROTOCOL_ERROR),
        (b"-ERR too busy\r\n", ErrorClass.UNEXPECTED_REPLY),
    ],
)
def test_pop3_bad_greeting(
    greeting: bytes, expected: ErrorClass, make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with ScriptedPeer(pop3_script(b"+OK\r\n", greeting)) as peer:
        result = probe_pop3(make_endpoint(peer.port, auth=True), policy=policy)
    assert result.error_class is expected


def test_pop3_silent_server_times_out(make_endpoint: MakeEndpoint, policy: NetworkPolicy) -> None:
    with ScriptedPeer(Script(greeting=SILENT)) as peer:
        endpoint = make_endpoint(peer.port, auth=True, timeout_s=60.0)
        result = probe_pop3(endpoint, policy=policy, deadline_s=0.5)
    assert result.error_class is ErrorClass.TIMEOUT


def test_pop3_stls_not_offered(make_endpoint: MakeEndpoint, policy: NetworkPolicy) -> None:
    with ScriptedPeer(pop3_script(b"+OK\r\n")) as peer:
        result = probe_pop3(make_endpoint(peer.port, Security.STARTTLS, auth=True), policy=policy)
        assert not any(line.startswith(b"PASS") for line in peer.lines)
    assert result.error_class is ErrorClass.STARTTLS_UNAVAILABLE


def test_pop3_mailbox_uidl_retrieve_delete(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with ScriptedPeer(pop3_script(b"+OK\r\n")) as peer:
        with Pop3Mailbox(make_endpoint(peer.port, auth=True), policy=policy) as box:
            assert box.uidl() == [(1, "uid-one"), (2, "uid-two")]
            assert box.retrieve(1) == b"Subject: x\r\n\r\n.starts with a dot\r\nend\r\n"
            box.delete(1)
        assert peer.lines[-1] == b"QUIT\r\n"  # the deletion is committed by QUIT
