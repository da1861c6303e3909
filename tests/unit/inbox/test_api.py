"""The inbox REST API on a per-test SQLite file: search, paging, sort, detail, downloads,
quarantine, re-parse, manual fetch, notifications, and team isolation."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from postroom.api.app import create_app
from postroom.domain.accounts import AccountDraft, IncomingDraft, Security
from postroom.domain.inbox import Origin, StoreOutcome
from postroom.domain.people import Actor, Role
from postroom.settings import load_settings
from postroom.wiring import Container, build

SYSTEM = Actor.system()
SECRET = "inbox-Pa55word"


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    c = build(
        load_settings(database_url=f"sqlite:///{tmp_path}/t.db", var_dir=tmp_path, env="test")
    )
    c.migrate()
    yield c
    c.fetching.shutdown()
    c.close()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container)) as c:
        yield c


def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def headers(container: Container, email: str, role: Role, teams: list[int]) -> dict[str, str]:
    user = container.people.create_user(SYSTEM, email=email, role=role, team_ids=teams)
    return {"Authorization": f"Bearer {container.people.create_token(SYSTEM, user.id, 't')}"}


def account(container: Container, name: str, team_id: int | None) -> int:
    draft = AccountDraft(
        name=name,
        email=f"{name}@example.com",
        team_id=team_id,
        incoming=IncomingDraft(
            host="127.0.0.1",
            port=closed_port(),
            security=Security.NONE,
            username="u",
            password=SECRET,
        ),
    )
    return container.accounts.create(SYSTEM, draft).id


def message(subject: str, sender: str, date: datetime, attach: bool = False) -> bytes:
    head = (
        f"From: {sender}\r\nTo: me@example.com\r\nSubject: {subject}\r\n"
        f"Date: {date.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@example.org>\r\n"
    )
    if not attach:
        return (head + "\r\n<b>hi</b>\r\n").encode()
    return (
        head + 'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/html\r\n\r\n<p>hi<script>x()</script></p>\r\n"
        '--b\r\nContent-Type: text/csv; name="data.csv"\r\n'
        'Content-Disposition: attachment; filename="data.csv"\r\n\r\na,b\r\n1,2\r\n--b--\r\n'
    ).encode()


@pytest.fixture
def world(container: Container) -> dict[str, Any]:
    team_a = container.people.create_team(SYSTEM, "A").id
    team_b = container.people.create_team(SYSTEM, "B").id
    acct = account(container, "sales", team_a)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    container.inbox.ingest(acct, message("quarterly report", "Ann <ann@a.org>", base, True))
    for i in range(4):
        container.inbox.ingest(
            acct, message(f"note {i}", "bob@b.org", base + timedelta(days=i + 1)), Origin("INBOX")
        )
    container.inbox.ingest(acct, b"\x00not mail")
    return {
        "account": acct,
        "admin": headers(container, "admin@x.org", Role.ADMIN, []),
        "manager": headers(container, "mgr@x.org", Role.MANAGER, [team_a]),
        "member_a": headers(container, "ma@x.org", Role.MEMBER, [team_a]),
        "member_b": headers(container, "mb@x.org", Role.MEMBER, [team_b]),
    }


def test_list_search_sort_and_page(client: TestClient, world: dict[str, Any]) -> None:
    url = f"/api/v1/accounts/{world['account']}/messages"
    h = world["member_a"]
    page = client.get(url, headers=h).json()
    assert page["total"] == 5
    assert [m["subject"] for m in page["items"]][:2] == ["note 3", "note 2"]
    found = client.get(url, params={"sender": "ANN"}, headers=h).json()
    assert [m["subject"] for m in found["items"]] == ["quarterly report"]
    assert found["items"][0]["from_"] == {"name": "Ann", "email": "ann@a.org"}
    paged = client.get(
        url, params={"subject": "note", "limit": 2, "offset": 2, "sort": "subject"}, headers=h
    ).json()
    assert [m["subject"] for m in paged["items"]] == ["note 2", "note 3"]
    dated = client.get(
        url,
        params={"since": "2026-11-02T00:00:00Z", "until": "2026-11-04T00:00:00Z"},
        headers=h,
    ).json()
    assert sorted(m["subject"] for m in dated["items"]) == ["note 0", "note 1"]
    with_att = client.get(url, params={"has_attachments": True}, headers=h).json()
    assert [m["subject"] for m in with_att["items"]] == ["quarterly report"]
    bad = client.get(url, params={"sort": "nope"}, headers=h)
    assert bad.status_code == 422
    naive = client.get(url, params={"since": "2026-11-02T00:00:00"}, headers=h)
    assert naive.status_code == 422


def test_detail_raw_and_attachment(client: TestClient, world: dict[str, Any]) -> None:
    h = world["member_a"]
    url = f"/api/v1/accounts/{world['account']}/messages"
    item = client.get(url, params={"has_attachments": True}, headers=h).json()["items"][0]
    detail = client.get(f"/api/v1/inbox/messages/{item['id']}", headers=h).json()
    assert "script" not in detail["html_body"]
    assert "hi" in detail["html_body"]
    (att,) = detail["attachments"]
    assert (att["filename"], att["content_type"]) == ("data.csv", "text/csv")
    got = client.get(
        f"/api/v1/inbox/messages/{item['id']}/attachments/{att['index']}",
        headers=h,
    )
    assert got.status_code == 200
    assert got.content == b"a,b\r\n1,2"  # the CRLF before a boundary belongs to it
    assert 'filename="data.csv"' in got.headers["content-disposition"]
    raw = client.get(f"/api/v1/inbox/messages/{item['id']}/raw", headers=h)
    assert raw.headers["content-type"].startswith("message/rfc822")
    assert raw.content.startswith(b"From: Ann <ann@a.org>\r\n")
    missing = client.get(f"/api/v1/inbox/messages/{item['id']}/attachments/42", headers=h)
    assert missing.status_code == 404


def test_quarantine_list_download_reparse(client: TestClient, world: dict[str, Any]) -> None:
    h = world["manager"]
    q = client.get("/api/v1/inbox/quarantine", headers=h).json()
    assert q["total"] == 1
    (item,) = q["items"]
    assert item["status"] == "quarantined"
    assert "no header section" in item["quarantine_reason"]
    raw = client.get(f"/api/v1/inbox/messages/{item['id']}/raw", headers=h)
    assert raw.content == b"\x00not mail"
    again = client.post(f"/api/v1/inbox/messages/{item['id']}/reparse", headers=h)
    assert again.status_code == 200
    assert again.json()["status"] == "quarantined"
    member = client.post(f"/api/v1/inbox/messages/{item['id']}/reparse", headers=world["member_a"])
    assert member.status_code == 403


def test_other_team_sees_nothing(client: TestClient, world: dict[str, Any]) -> None:
    h = world["member_b"]
    acct = world["account"]
    assert client.get(f"/api/v1/accounts/{acct}/messages", headers=h).status_code == 404
    assert client.get("/api/v1/inbox/quarantine", headers=h).json()["total"] == 0
    mine = client.get(f"/api/v1/accounts/{acct}/messages", headers=world["admin"]).json()
    some_id = mine["items"][0]["id"]
    for path in ("", "/raw", "/attachments/0"):
        assert client.get(f"/api/v1/inbox/messages/{some_id}{path}", headers=h).status_code == 404
    assert client.post(f"/api/v1/accounts/{acct}/fetch", headers=h).status_code == 404
    assert client.get(f"/api/v1/accounts/{acct}/messages").status_code == 401


def test_manual_fetch_reports_failure_and_writes_timeline(
    client: TestClient, container: Container, world: dict[str, Any]
) -> None:
    acct = world["account"]
    assert (
        client.post(f"/api/v1/accounts/{acct}/fetch", headers=world["member_a"]).status_code == 403
    )
    report = client.post(f"/api/v1/accounts/{acct}/fetch", headers=world["manager"])
    assert report.status_code == 200
    body = report.json()
    assert (body["ok"], body["auth_failure"]) == (False, False)
    assert body["error"]
    assert SECRET not in report.text
    events = container.audit.timeline(SYSTEM, acct, 50, None)
    assert any("fetch failed" in str(e) for e in events)


def test_notifications_listed_for_admins(
    client: TestClient, container: Container, world: dict[str, Any]
) -> None:
    container.log.notify("error", "fetching switched off", account_id=world["account"])
    notes = client.get("/api/v1/notifications", headers=world["admin"]).json()
    assert [n["message"] for n in notes] == ["fetching switched off"]
    assert client.get("/api/v1/notifications", headers=world["member_b"]).json() == []
    done = client.post(f"/api/v1/notifications/{notes[0]['id']}/read", headers=world["admin"])
    assert done.status_code == 204
    unread = client.get("/api/v1/notifications", params={"unread": True}, headers=world["admin"])
    assert unread.json() == []


def test_mixed_batch_of_parsed_and_quarantined(container: Container) -> None:
    acct = account(container, "mixed", None)
    batch = [
        container.inbox.prepare(acct, raw, Origin("INBOX", uid=i))
        for i, raw in enumerate([b"Subject: a\r\n\r\nx", b"\x00junk", b"Subject: a\r\n\r\nx"])
    ]
    with container.engine.begin() as conn:
        outcomes = container.inbox.record(conn, batch)
    assert outcomes == [StoreOutcome.STORED, StoreOutcome.QUARANTINED, StoreOutcome.DUPLICATE]
