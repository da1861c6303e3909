"""The account page's Health widget (checks, sending, fetching), notifications for admins,
timeline paging, and the HTML error pages beside the API's problem details."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

from fastapi import APIRouter

from postroom.domain.accounts import (
    AccountDraft,
    AuthMode,
    IncomingDraft,
    OutgoingDraft,
    Security,
    SendMode,
)
from postroom.domain.outbox import Draft
from postroom.domain.people import Actor, Role
from postroom.storage.audit import TimelineEvent
from postroom.testing.peers import Script, ScriptedPeer, SmtpPeer
from postroom.web.core import WebRoute
from postroom.web.pages.accounts import TIMELINE_SIZE, timeline_page
from tests.integration.web.conftest import Web, build_container, csrf_of

SYSTEM = Actor.system()
# An IMAP server that refuses every login (RFC 3501 §6.2.3 NO, RFC 5530 response code).
REFUSING_IMAP = Script(
    greeting=b"* OK scripted IMAP ready\r\n",
    tagged=True,
    replies=(
        (b"CAPABILITY", b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n{tag} OK done\r\n"),
        (b"LOGIN", b"{tag} NO [AUTHENTICATIONFAILED] Authentication failed.\r\n"),
        (b"LOGOUT", b"* BYE bye\r\n{tag} OK done\r\n"),
    ),
    default=b"{tag} BAD unknown command\r\n",
)


def _closed_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


def _incoming(port: int) -> IncomingDraft:
    return IncomingDraft(
        host="127.0.0.1", port=port, security=Security.NONE, username="desk", password="pw-1"
    )


def _admin(web: Web) -> Web:
    web.user("boss@example.com", Role.ADMIN)
    return web


def test_health_shows_the_last_send_and_the_queue(web: Web) -> None:
    with SmtpPeer() as peer:
        out = OutgoingDraft(
            host="127.0.0.1",
            port=peer.port,
            security=Security.NONE,
            auth_mode=AuthMode.NONE,
            send_mode=SendMode.IMMEDIATE,
        )
        account = AccountDraft(name="Sender", email="sender@example.com", outgoing=out)
        account_id = web.container.accounts.create(SYSTEM, account).id
        client = _admin(web).login("boss@example.com")
        assert "Last send</dt><dd>never" in client.get(f"/accounts/{account_id}").text
        draft = Draft(
            to=("x@example.com",), subject="Quarterly figures", text="hi", account_id=account_id
        )
        sent = web.container.outbox.submit(SYSTEM, draft).message
    assert sent.status.value == "sent"
    page = client.get(f"/accounts/{account_id}").text
    send = page.split('id="health-send"', 1)[1].split("</dl>", 1)[0]
    assert f'<a href="/outbox/{sent.id}">Quarterly figures</a>' in send
    assert re.search(r'data-status="sent"[^>]*>sent <b>1</b>', send)
    assert 'id="health-fetch"' not in page  # no incoming part, no fetching health


def test_a_failing_fetch_shows_since_when_and_why(web: Web) -> None:
    draft = AccountDraft(name="Desk", email="desk@example.com", incoming=_incoming(_closed_port()))
    account_id = web.container.accounts.create(SYSTEM, draft).id
    client = _admin(web).login("boss@example.com")
    assert "never fetched" in client.get(f"/accounts/{account_id}").text
    web.container.fetching.fetch_account(account_id)
    fetch = client.get(f"/accounts/{account_id}").text.split('id="health-fetch"', 1)[1]
    assert re.search(r'class="health bad">failing since \d{4}-\d\d-\d\d \d\d:\d\d<', fetch)
    assert "1 failed run:" in fetch
    assert "Switch fetching on again" not in fetch


def test_auto_disabled_fetching_is_flagged_notified_and_can_be_switched_on(
    tmp_path: Path,
) -> None:
    web = _admin(Web(build_container(tmp_path, auto_disable_auth_failures=1)))
    try:
        with ScriptedPeer(REFUSING_IMAP) as imap:
            draft = AccountDraft(
                name="Desk", email="desk@example.com", incoming=_incoming(imap.port)
            )
            account_id = web.container.accounts.create(SYSTEM, draft).id
            web.container.fetching.fetch_account(account_id)
        client = web.login("boss@example.com")
        page = client.get(f"/accounts/{account_id}").text
        fetch = page.split('id="health-fetch"', 1)[1]
        assert 'class="health off">switched off automatically<' in fetch
        assert "1 consecutive authentication failure:" in fetch
        # The admin's navigation counts the unread notification …
        assert re.search(r'href="/notifications">Notifications <span class="nav-count">1<', page)
        listing = client.get("/notifications").text
        assert "fetching switched off for account &#39;Desk&#39;" in listing
        assert f'<a href="/accounts/{account_id}">Desk</a>' in listing
        # … until it is marked read.
        notification = web.container.log.notifications(SYSTEM)[0]
        token = csrf_of(client, "/notifications")
        client.post(f"/notifications/{notification.id}/read", data={"csrf_token": token})
        listing = client.get("/notifications").text
        assert "nav-count" not in listing.split("<main", 1)[0]
        assert "Mark read</button>" not in listing
        assert "No unread notifications." in client.get("/notifications?unread=true").text
        # Switching fetching on again (after fixing the password) is one button.
        response = client.post(
            f"/accounts/{account_id}/fetching/enable", data={"csrf_token": token}
        )
        assert response.status_code == 303
        assert web.container.fetching.status(account_id)["enabled"] is True
        assert (
            "Fetching for Desk is switched on again." in client.get(f"/accounts/{account_id}").text
        )
    finally:
        web.container.close()


def test_notifications_are_for_admins_only(web: Web) -> None:
    web.container.log.notify("error", "something for admins")
    web.user("member@example.com", Role.MEMBER)
    client = web.login("member@example.com")
    assert "Notifications" not in client.get("/accounts").text
    assert client.get("/notifications").status_code == 403
    token = csrf_of(client, "/accounts")
    assert client.post("/notifications/read-all", data={"csrf_token": token}).status_code == 403
    admin = _admin(web).login("boss@example.com")
    token = csrf_of(admin, "/notifications")
    admin.post("/notifications/read-all", data={"csrf_token": token})
    assert web.container.log.notifications(SYSTEM, unread_only=True) == []


def test_the_timeline_pages_with_an_older_link(web: Web) -> None:
    draft = AccountDraft(name="Busy", email="busy@example.com")
    account_id = web.container.accounts.create(SYSTEM, draft).id
    for n in range(TIMELINE_SIZE + 5):
        web.container.audit.add_comment(SYSTEM, account_id, f"note {n:03d}")
    client = _admin(web).login("boss@example.com")
    url, pages, notes = f"/accounts/{account_id}", [], []
    while url:
        timeline = client.get(url).text.split('id="timeline"', 1)[1]
        pages.append(timeline)
        notes += re.findall(r"note (\d{3})", timeline.split("<nav", 1)[0])
        older = re.search(
            r'href="(/accounts/\d+\?before=[^"#]+)#timeline" rel="next">Older', timeline
        )
        url = older.group(1) if older else ""
    assert len(pages) > 1
    assert "note 104" in pages[0]
    assert "note 000" not in pages[0]
    # Every comment shows exactly once across the pages, newest first: nothing skipped.
    assert notes == [f"{n:03d}" for n in reversed(range(TIMELINE_SIZE + 5))]
    assert f'href="/accounts/{account_id}#timeline">Newest' in pages[-1]
    assert "Newest" not in pages[0]
    assert client.get(f"/accounts/{account_id}?before=yesterday").status_code == 422


def test_timeline_page_keeps_events_of_one_instant_together() -> None:
    t = datetime(2024, 5, 1, 12, tzinfo=UTC)

    def ev(at: datetime, n: int) -> TimelineEvent:
        return TimelineEvent(at, "log", "system", f"e{n}", {}, n)

    same = [ev(t, 1), ev(t - timedelta(seconds=1), 2), ev(t - timedelta(seconds=1), 3)]
    shown, cursor = timeline_page(same, 2)
    assert [e.ref_id for e in shown] == [1]  # e2 and e3 share an instant: both go next
    assert cursor == t - timedelta(seconds=1) + timedelta(microseconds=1)
    distinct = [ev(t - timedelta(seconds=n), n) for n in range(3)]
    shown, cursor = timeline_page(distinct, 2)
    assert [e.ref_id for e in shown] == [0, 1]
    assert cursor == t - timedelta(seconds=1)
    assert timeline_page(distinct, 3) == (distinct, None)


def test_unknown_pages_get_html_and_unknown_api_paths_get_problem_details(web: Web) -> None:
    client = _admin(web).login("boss@example.com")
    page = client.get("/no/such/page")
    assert page.status_code == 404
    assert page.headers["content-type"].startswith("text/html")
    assert "<h1>Page not found</h1>" in page.text
    assert 'aria-label="Main"' in page.text  # in the site layout, with the navigation
    anonymous = web.client().get("/nothing-here")
    assert anonymous.status_code == 404
    assert "Page not found" in anonymous.text
    api = client.get("/api/v1/no-such-thing")
    assert api.status_code == 404
    assert api.headers["content-type"] == "application/problem+json"
    assert api.json()["status"] == 404
    bad_query = client.get("/accounts?page=many")
    assert bad_query.status_code == 422
    assert "page: " in bad_query.text
    assert bad_query.headers["content-type"].startswith("text/html")
    api_bad = client.get("/api/v1/accounts?limit=many", headers={"Authorization": "Bearer x"})
    assert api_bad.headers["content-type"] == "application/problem+json"


def test_an_unexpected_failure_is_a_friendly_500_page_without_a_trace(web: Web) -> None:
    app = web.client().app
    boom = APIRouter(route_class=WebRoute)

    @boom.get("/boom")
    def explode() -> None:
        raise RuntimeError("secret internals 0xdeadbeef")

    @boom.get("/api/v1/boom")
    def explode_api() -> None:
        raise RuntimeError("secret internals 0xdeadbeef")

    app.include_router(boom)  # type: ignore[attr-defined]
    from fastapi.testclient import TestClient

    client = TestClient(app, raise_server_exceptions=False)
    page = client.get("/boom")
    assert page.status_code == 500
    assert "<h1>Something went wrong</h1>" in page.text
    assert "0xdeadbeef" not in page.text
    assert "Traceback" not in page.text
    api = client.get("/api/v1/boom")
    assert api.status_code == 500
    assert api.headers["content-type"] == "application/problem+json"
    assert "0xdeadbeef" not in api.text
