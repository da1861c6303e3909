"""Raw bytes survive the trip server → store exactly; malformed mail is kept, the unparseable
quarantined, and a 25 MB message goes through."""

from __future__ import annotations

import base64
import hashlib
import imaplib
import secrets
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postroom.domain.inbox import InboxQuery, MessageStatus
from postroom.domain.people import Actor
from postroom.settings import load_settings
from postroom.testing.dovecot import DovecotServer
from postroom.wiring import Container, build
from tests.integration.inbox.conftest import MakeAccount

SYSTEM = Actor.system()

MALFORMED = [
    b"From: bad@@ <>\r\nTo: ,,,<\r\nDate: 32 Foo 99999\r\nSubject: bad headers\r\n\r\nbody\r\n",
    b"Subject: broken mime\r\nContent-Type: multipart/mixed; boundary=ZZ\r\n\r\nno parts\r\n",
    b"Subject: charset\r\nContent-Type: text/plain; charset=x-nope\r\n\r\n\xe9t\xe9\r\n",
    b"Subject: caf\xc3\xa9 \xff 8-bit header\r\nFrom: J\xf6rg <j@x.de>\r\n\r\nbody\r\n",
    b"Subject: bare lf\nFrom: a@b.c\n\nline1\nline2\n",
    b"Subject: nul\r\n\r\nbody with a \x00 NUL\r\n",
    b"this is not an e-mail at all\r\n",
]


def fetch_all(container: Container, account_id: int) -> None:
    report = container.fetching.fetch_account(account_id)
    assert report.ok, report.error


def stored_raw(container: Container, account_id: int) -> dict[bytes, MessageStatus]:
    out = {}
    for status in MessageStatus:
        page = container.inbox.list(SYSTEM, account_id, InboxQuery(status=status, limit=500))
        for m in page.items:
            out[container.inbox.raw_bytes(SYSTEM, m.id)] = m.status
    return out


def server_messages(dovecot: DovecotServer, user: str) -> list[bytes]:
    """Every message of the user's INBOX as the server hands it out."""
    imap = imaplib.IMAP4(dovecot.host, dovecot.ports.imap, timeout=30)
    try:
        imap.login(user, dovecot.password(user))
        imap.select("INBOX", readonly=True)
        _typ, data = imap.fetch("1:*", "(BODY.PEEK[])")
        return [bytes(part[1]) for part in data if isinstance(part, tuple)]
    finally:
        imap.logout()


def test_malformed_messages_kept_raw_unparseable_quarantined(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = make_account()
    fetch_all(container, account_id)
    for raw in MALFORMED:
        dovecot.append(user, "INBOX", raw)
    fetch_all(container, account_id)
    kept = stored_raw(container, account_id)
    # Byte for byte what the server sent (Dovecot itself turns bare LF into CRLF and NUL
    # into 0x80 on APPEND).
    on_server = server_messages(dovecot, user)
    assert sorted(kept) == sorted(on_server)
    assert list(kept.values()).count(MessageStatus.QUARANTINED) == 1
    (not_mail,) = [raw for raw, status in kept.items() if status is MessageStatus.QUARANTINED]
    assert not_mail.startswith(b"this is not an e-mail")
    quarantined = container.inbox.quarantine(SYSTEM, InboxQuery()).items
    assert [m.quarantine_reason for m in quarantined] == [
        "no header section: the data does not look like an e-mail message"
    ]


header = st.sampled_from([b"Subject", b"From", b"To", b"Date", b"Content-Type", b"X-\xe9"])
value = st.binary(min_size=1, max_size=40).filter(lambda b: b"\r" not in b and b"\n" not in b)
garbage_mail = st.builds(
    lambda hs, body: b"".join(h + b": " + v + b"\r\n" for h, v in hs) + b"\r\n" + body + b"\r\n",
    st.lists(st.tuples(header, value), min_size=1, max_size=5),
    st.binary(max_size=120).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"\r\n")),
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(raws=st.lists(garbage_mail, min_size=1, max_size=4))
def test_generated_garbage_never_stops_the_loop(
    container: Container, dovecot: DovecotServer, make_account: MakeAccount, raws: list[bytes]
) -> None:
    account_id, user = make_account()
    fetch_all(container, account_id)
    for raw in raws:
        tagged = b"X-Tag: " + secrets.token_hex(8).encode() + b"\r\n" + raw  # unique raw bytes
        dovecot.append(user, "INBOX", tagged)
    fetch_all(container, account_id)
    assert sorted(stored_raw(container, account_id)) == sorted(server_messages(dovecot, user))


def test_25_mb_message(
    container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = make_account()
    fetch_all(container, account_id)
    payload = secrets.token_bytes(18 * 1024 * 1024)
    encoded = base64.encodebytes(payload).replace(b"\n", b"\r\n")
    raw = (
        b"Subject: big\r\nMessage-ID: <big@test.example>\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n--b\r\n'
        b"Content-Type: text/plain\r\n\r\nsee attachment\r\n--b\r\n"
        b'Content-Type: application/octet-stream; name="big.bin"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\n" + encoded + b"--b--\r\n"
    )
    assert len(raw) > 24 * 1024 * 1024
    dovecot.append(user, "INBOX", raw)
    report = container.fetching.fetch_account(account_id)
    assert (report.ok, report.stored) == (True, 1), report.error
    (message,) = container.inbox.list(SYSTEM, account_id, InboxQuery()).items
    assert message.size == len(raw)
    assert message.raw_sha256 == hashlib.sha256(raw).hexdigest()
    detail = container.inbox.get(SYSTEM, message.id)
    assert detail.text_body.strip() == "see attachment"
    (att,) = detail.attachments
    assert (att.filename, att.size) == ("big.bin", len(payload))
    download = container.inbox.attachment(SYSTEM, message.id, att.index)
    assert hashlib.sha256(b"".join(download.chunks)).digest() == hashlib.sha256(payload).digest()


def test_size_limit_quarantines(
    tmp_path: Path, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = make_account()
    small = build(
        load_settings(
            database_url=f"sqlite:///{tmp_path}/t.db",
            var_dir=tmp_path,
            env="test",
            ca_file=str(dovecot.cafile),
            max_message_bytes=100,
        )
    )
    fetch_all(small, account_id)
    dovecot.append(user, "INBOX", b"Subject: large\r\n\r\n" + b"x" * 500 + b"\r\n")
    fetch_all(small, account_id)
    (message,) = small.inbox.quarantine(SYSTEM, InboxQuery(), account_id).items
    assert "exceeds the limit of 100 bytes" in message.quarantine_reason
    assert small.inbox.raw_bytes(SYSTEM, message.id).endswith(b"x" * 500 + b"\r\n")
    small.close()
