"""The private Dovecot peer works as the other tests expect: every listener, TLS that verifies
against the test CA, LMTP and APPEND delivery, UIDVALIDITY changes, users added at run time."""

from __future__ import annotations

import imaplib
import poplib
import secrets
import smtplib
import ssl
from email.message import EmailMessage

import pytest

from postroom.domain.accounts import Security
from postroom.errors import InvalidInput
from postroom.testing.dovecot import DovecotServer, dovecot_available
from postroom.testing.peer import is_listening
from postroom.testing.services import missing_service


def _message(subject: str = "hello") -> tuple[str, bytes]:
    msg = EmailMessage()
    message_id = f"<{secrets.token_hex(8)}@test.postroom>"
    msg["From"] = "sender@example.test"
    msg["To"] = "alice@postroom.test"
    msg["Subject"] = subject
    msg["Message-ID"] = message_id
    msg.set_content("body\n")
    return message_id, msg.as_bytes()


def _login(imap: imaplib.IMAP4, dovecot: DovecotServer, user: str = "alice") -> str:
    typ, _ = imap.login(user, dovecot.password(user))
    imap.logout()
    return typ


def test_imap_plain_login(dovecot: DovecotServer) -> None:
    assert _login(imaplib.IMAP4(dovecot.host, dovecot.ports.imap, timeout=10), dovecot) == "OK"


def test_imap_starttls_login(dovecot: DovecotServer) -> None:
    imap = imaplib.IMAP4(dovecot.host, dovecot.ports.imap, timeout=10)
    imap.starttls(ssl_context=dovecot.tls.client_context())
    assert _login(imap, dovecot) == "OK"


def test_imaps_login_with_verified_certificate(dovecot: DovecotServer) -> None:
    context = ssl.create_default_context(cafile=str(dovecot.cafile))
    imap = imaplib.IMAP4_SSL(dovecot.host, dovecot.ports.imaps, ssl_context=context, timeout=10)
    assert _login(imap, dovecot) == "OK"


def test_imaps_certificate_is_not_trusted_without_the_test_ca(dovecot: DovecotServer) -> None:
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(
            dovecot.host, dovecot.ports.imaps, ssl_context=ssl.create_default_context()
        )


def test_imap_wrong_password_is_refused(dovecot: DovecotServer) -> None:
    imap = imaplib.IMAP4(dovecot.host, dovecot.ports.imap, timeout=10)
    with pytest.raises(imaplib.IMAP4.error, match="AUTHENTICATIONFAILED"):
        imap.login("alice", "not-the-password")
    imap.logout()


@pytest.mark.parametrize("mode", ["plain", "stls", "pop3s"])
def test_pop3_login_and_uidl_after_lmtp_delivery(dovecot: DovecotServer, mode: str) -> None:
    user = f"pop-{mode}"
    dovecot.add_user(user, "pop-password")
    dovecot.deliver(user, _message()[1])
    context = dovecot.tls.client_context()
    if mode == "pop3s":
        pop: poplib.POP3 = poplib.POP3_SSL(
            dovecot.host, dovecot.ports.pop3s, context=context, timeout=10
        )
    else:
        pop = poplib.POP3(dovecot.host, dovecot.ports.pop3, timeout=10)
        if mode == "stls":
            pop.stls(context=context)
    pop.user(user)
    assert pop.pass_("pop-password").startswith(b"+OK")
    assert len(pop.uidl()[1]) == 1
    pop.quit()


def test_lmtp_delivery_is_visible_over_imap(dovecot: DovecotServer) -> None:
    message_id, raw = _message("lmtp")
    dovecot.deliver("bob", raw)
    fetched = dovecot.find_message("bob", message_id)
    assert fetched is not None
    assert b"Subject: lmtp" in fetched


def test_lmtp_refuses_an_unknown_user(dovecot: DovecotServer) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        dovecot.deliver("nobody-here", _message()[1])


def test_append_returns_the_uid_and_keeps_flags(dovecot: DovecotServer) -> None:
    first = dovecot.append("carol", "Projects/Alpha", _message()[1], flags=["\\Seen"])
    second = dovecot.append("carol", "Projects/Alpha", _message()[1])
    assert second == first + 1
    status = dovecot.folder_status("carol", "Projects/Alpha")
    assert status["MESSAGES"] == 2
    assert status["UNSEEN"] == 1


def test_recreating_a_folder_changes_its_uidvalidity(dovecot: DovecotServer) -> None:
    dovecot.append("carol", "Recreated", _message()[1])
    before = dovecot.folder_status("carol", "Recreated")["UIDVALIDITY"]
    dovecot.delete_folder("carol", "Recreated")
    dovecot.create_folder("carol", "Recreated")
    after = dovecot.folder_status("carol", "Recreated")
    assert after["UIDVALIDITY"] != before
    assert after["MESSAGES"] == 0


def test_user_added_while_running_can_log_in_and_receive(dovecot: DovecotServer) -> None:
    dovecot.add_user("dave", "dave-password")
    message_id, raw = _message()
    dovecot.deliver("dave", raw)
    assert dovecot.find_message("dave", message_id) is not None


def test_bad_user_names_and_passwords_are_refused(dovecot: DovecotServer) -> None:
    with pytest.raises(InvalidInput, match="user"):
        dovecot.add_user("Eve:root", "x")
    with pytest.raises(InvalidInput, match="password"):
        dovecot.add_user("eve", "a:b")
    with pytest.raises(InvalidInput, match="folder"):
        dovecot.create_folder("alice", "bad\r\nA1 LOGOUT")


def test_endpoint_values_name_every_service(dovecot: DovecotServer) -> None:
    endpoints = dovecot.endpoint_values()
    assert endpoints["imaps"].security is Security.SSL
    assert endpoints["imap_starttls"].port == endpoints["imap"].port == dovecot.ports.imap
    assert endpoints["pop3s"].values() == {
        "host": "127.0.0.1",
        "port": dovecot.ports.pop3s,
        "security": "ssl",
    }
    assert all(is_listening(endpoint.port) for endpoint in endpoints.values())


def test_repr_shows_no_password(dovecot: DovecotServer) -> None:
    assert all(password not in repr(dovecot) for password in dovecot.users.values())


@pytest.mark.dovecot
def test_stop_closes_every_port_and_removes_the_directory() -> None:
    reason = dovecot_available()
    if reason is not None:
        missing_service(reason)
    server = DovecotServer({"zed": "zed-password"}).start()
    ports = [endpoint.port for endpoint in server.endpoint_values().values()]
    assert server.running
    server.stop()
    assert not server.running
    assert not any(is_listening(port) for port in ports)
    assert not server.dir.exists()
