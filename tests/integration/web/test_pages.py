"""Inbox, outbox, settings, admin and the team switcher, through the pages (no JavaScript)."""

from __future__ import annotations

import re
import socket

from postroom.domain.accounts import (
    AccountDraft,
    AccountQuery,
    AuthMode,
    IncomingDraft,
    OutgoingDraft,
    Security,
)
from postroom.domain.people import Actor, Role
from postroom.web import forms
from postroom.web.pages.inbox import HTML_CSP
from tests.integration.web.conftest import PASSWORD, Web, csrf_of

MAIL = (
    b"From: Ann <ann@example.com>\r\nTo: desk@example.com\r\nSubject: Invoice 42\r\n"
    b"Message-ID: <inv42@example.com>\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
    b"--b\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
    b'<p>Hello <b>desk</b></p><script>alert(1)</script><img src="https://tracker.test/p.gif">\r\n'
    b'--b\r\nContent-Type: text/plain; name="note.txt"\r\nContent-Disposition: attachment; '
    b'filename="note.txt"\r\n\r\nattached words\r\n--b--\r\n'
)


def _account(web: Web, name: str = "Desk", team_id: int | None = None) -> int:
    draft = AccountDraft(
        name=name,
        email=f"{name.lower()}@example.com",
        team_id=team_id,
        outgoing=OutgoingDraft(
            host="smtp.example.com", security=Security.SSL, auth_mode=AuthMode.NONE
        ),
        incoming=IncomingDraft(host="imap.example.com", username="desk"),
    )
    return web.container.accounts.create(Actor.system(), draft).id


def test_an_inbox_message_shows_sanitised_html_in_a_sandbox_and_its_attachment(web: Web) -> None:
    account_id = _account(web)
    web.container.inbox.ingest(account_id, MAIL)
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    listing = client.get(f"/inbox?account={account_id}").text
    assert "Invoice 42" in listing
    message_id = int(re.search(r'href="/inbox/(\d+)"', listing).group(1))  # type: ignore[union-attr]
    page = client.get(f"/inbox/{message_id}").text
    assert (
        f'<iframe title="Message (HTML, sanitised)" sandbox src="/inbox/{message_id}/body.html"'
        in page
    )
    assert "note.txt" in page
    body = client.get(f"/inbox/{message_id}/body.html")
    assert body.headers["content-security-policy"] == HTML_CSP
    assert "<b>desk</b>" in body.text
    assert "<script" not in body.text
    attachment = client.get(f"/inbox/{message_id}/attachments/1")
    assert attachment.status_code == 200
    assert attachment.headers["content-type"] == "application/octet-stream"
    assert attachment.headers["content-disposition"] == 'attachment; filename="note.txt"'
    assert b"attached words" in attachment.content
    raw = client.get(f"/inbox/{message_id}/raw")
    assert raw.content == MAIL


def test_an_unparseable_message_waits_in_the_quarantine(web: Web) -> None:
    account_id = _account(web)
    web.container.inbox.ingest(account_id, b"\x00\x00 not a mail at all" * 10)
    web.user("boss@example.com", Role.ADMIN)
    page = web.login("boss@example.com").get("/inbox/quarantine").text
    assert "The quarantine is empty." not in page


def test_pause_and_resume_sending_from_the_account_page(web: Web) -> None:
    account_id = _account(web)
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    token = csrf_of(client, f"/accounts/{account_id}")
    client.post(f"/accounts/{account_id}/sending/pause", data={"csrf_token": token})
    page = client.get(f"/accounts/{account_id}").text
    assert "Sending for Desk paused." in page
    assert "Resume sending" in page
    client.post(f"/accounts/{account_id}/sending/resume", data={"csrf_token": token})
    assert "Pause sending" in client.get(f"/accounts/{account_id}").text


def test_an_illegal_transition_is_explained_on_the_page(web: Web) -> None:
    account_id = _account(web)
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    token = csrf_of(client, f"/accounts/{account_id}")
    response = client.post(
        f"/accounts/{account_id}/status/restore",
        data={"csrf_token": token},
        headers={"Referer": f"http://testserver/accounts/{account_id}"},
    )
    assert response.headers["location"] == f"/accounts/{account_id}"
    assert (
        "cannot restore an account that is active" in client.get(response.headers["location"]).text
    )


def test_admin_creates_a_team_and_a_user_who_can_log_in_with_the_shown_password(web: Web) -> None:
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    token = csrf_of(client, "/admin")
    client.post("/admin/teams", data={"csrf_token": token, "name": "Sales"})
    team = web.container.people.list_teams(Actor.system())[0]
    response = client.post(
        "/admin/users",
        data={
            "csrf_token": token,
            "email": "new@example.com",
            "role": "manager",
            "team_ids": [str(team.id)],
        },
    )
    password = response.text.split('class="secret-once">', 1)[1].split("<", 1)[0]
    fresh = web.client()
    login = fresh.post(
        "/login",
        data={
            "email": "new@example.com",
            "password": password,
            "csrf_token": csrf_of(fresh, "/login"),
        },
    )
    assert login.status_code == 303
    assert "Sales" in fresh.get("/accounts").text  # the team switcher lists the user's team


def test_the_team_switcher_filters_the_accounts_list(web: Web) -> None:
    people = web.container.people
    team_a = people.create_team(Actor.system(), "A").id
    team_b = people.create_team(Actor.system(), "B").id
    _account(web, "Alpha", team_a)
    _account(web, "Bravo", team_b)
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    client.post("/team", data={"csrf_token": csrf_of(client, "/accounts"), "team_id": str(team_b)})
    page = client.get("/accounts").text
    assert "Bravo" in page
    assert "Alpha" not in page
    assert "Alpha" in client.get("/accounts?team=all").text


def test_my_work_location_is_saved(web: Web) -> None:
    location = web.container.people.create_location(Actor.system(), "Berlin")
    user_id = web.user("clerk@example.com", Role.MEMBER)
    client = web.login("clerk@example.com")
    client.post(
        "/settings/location",
        data={"csrf_token": csrf_of(client, "/settings"), "location_id": str(location.id)},
    )
    assert web.container.people.get_user(Actor.system(), user_id).work_location_id == location.id
    assert PASSWORD not in client.get("/settings").text


def test_comments_appear_in_the_activity_widget_and_the_timeline(web: Web) -> None:
    account_id = _account(web)
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    token = csrf_of(client, f"/accounts/{account_id}")
    client.post(
        f"/accounts/{account_id}/comments", data={"csrf_token": token, "body": "Ask IT <b>"}
    )
    page = client.get(f"/accounts/{account_id}").text
    assert "Ask IT &lt;b&gt;" in page  # escaped, never markup
    assert page.count("Ask IT &lt;b&gt;") == 2  # in the Activity widget and the timeline
    assert "Ask IT <b>" not in page


def test_verify_on_save_refuses_an_unreachable_server_and_stores_nothing(web: Web) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on (chosen by the OS)
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    values = forms.blank() | {
        "name": "Unreachable",
        "email": "u@example.com",
        "outgoing.host": "127.0.0.1",
        "outgoing.port": str(closed_port),
        "outgoing.security": "none",
        "outgoing.auth_mode": "none",
        "verify_on_save": "on",
        "intent": "save",
        "csrf_token": csrf_of(client, "/accounts/new"),
    }
    response = client.post("/accounts/new", data=values)
    assert response.status_code == 422
    assert 'data-field="outgoing.port"' in response.text
    assert "nothing accepts connections" in response.text
    listed = web.container.accounts.list(Actor.system(), AccountQuery(status=None))
    assert [a.name for a in listed.items] == []


def test_the_accounts_list_pages_and_searches(web: Web) -> None:
    for i in range(30):
        _account(web, f"Acc{i:02d}")
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    first = client.get("/accounts?team=all").text
    assert "Page 1 of 2" in first
    assert "Acc00" in first
    assert "Acc29" not in first
    second = client.get("/accounts?team=all&page=2").text
    assert "Acc29" in second
    found = client.get("/accounts?team=all&q=Acc17").text
    assert "Acc17" in found
    assert "Acc16" not in found
