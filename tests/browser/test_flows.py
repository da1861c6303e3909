"""The web UI end to end in real Chromium: every flow of issue 6 a user goes through."""

from __future__ import annotations

import csv
import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from postroom.domain.accounts import (
    AccountDraft,
    AuthMode,
    IncomingDraft,
    OutgoingDraft,
    Security,
    SendMode,
)
from postroom.domain.outbox import Draft
from postroom.domain.people import Actor
from tests.browser.conftest import PEER_SECRET, PEER_USER, Site, log_in

pytestmark = pytest.mark.browser


def field(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f'[name="{name}"]')


def error_of(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(f'.field[data-field="{name}"] .error')


def smtp_account(site: Site, name: str, **outgoing: object) -> int:
    """An account sending to the test peer, made through the service (setup, not the flow)."""
    out = OutgoingDraft(
        host="127.0.0.1",
        port=site.peer.port,
        security=Security.NONE,
        auth_mode=AuthMode.NONE,
        **outgoing,  # type: ignore[arg-type]
    )
    draft = AccountDraft(name=name, email=f"{name.lower()}@example.com", outgoing=out)
    return site.container.accounts.create(Actor.system(), draft).id


def test_login_refuses_a_wrong_password_then_lets_the_admin_in(
    browser: Browser, site: Site
) -> None:
    context = browser.new_context()
    page = context.new_page()
    page.goto(f"{site.url}/accounts")
    expect(page).to_have_url(re.compile(r"/login\?next="))
    page.get_by_label("E-mail").fill("admin@postroom.local")
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("wrong e-mail or password")
    log_in(page, site)
    expect(page.get_by_role("heading", name="Accounts")).to_be_visible()
    expect(page.get_by_role("navigation", name="Main")).to_contain_text("Admin")
    context.close()


def test_create_an_account_fixing_errors_then_test_before_saving_and_set_default(
    page: Page, site: Site
) -> None:
    page.goto(f"{site.url}/accounts/new")
    expect(page.get_by_text("the server is usually the part after @").first).to_be_visible()
    save = page.get_by_role("button", name="Save")

    save.click()  # everything missing: each error sits at its field
    expect(error_of(page, "name")).to_have_text("is required")
    expect(error_of(page, "email")).to_contain_text("not an e-mail address")
    expect(error_of(page, "outgoing.host")).to_contain_text("is required")

    field(page, "name").fill("Support desk")
    save.click()
    expect(error_of(page, "name")).to_be_hidden()
    expect(error_of(page, "email")).to_contain_text("not an e-mail address")

    field(page, "email").fill("support@example.com")
    save.click()
    expect(error_of(page, "email")).to_be_hidden()
    expect(error_of(page, "outgoing.host")).to_contain_text("is required")

    # The port follows the security choice while the user has not typed one.
    port = field(page, "outgoing.port")
    field(page, "outgoing.security").select_option("ssl")
    expect(port).to_have_value("465")
    field(page, "outgoing.security").select_option("starttls")
    expect(port).to_have_value("587")
    field(page, "outgoing.security").select_option("none")
    expect(port).to_have_value("25")

    # Turning certificate verification off shows the warning.
    warning = page.locator('.cert-warning[data-for="outgoing.verify_certificate"]')
    expect(warning).to_be_hidden()
    field(page, "outgoing.verify_certificate").uncheck()
    expect(warning).to_be_visible()
    field(page, "outgoing.verify_certificate").check()
    expect(warning).to_be_hidden()

    field(page, "outgoing.host").fill("127.0.0.1")
    port.fill(str(site.peer.port))
    field(page, "outgoing.username").fill(PEER_USER)
    field(page, "outgoing.password").fill(PEER_SECRET)
    field(page, "has_incoming").uncheck()

    page.evaluate("window.__sameDocument = true")
    page.get_by_role("button", name="Test before saving").click()
    result = page.locator(".live-results .check")
    expect(result).to_have_class(re.compile(r"\bok\b"))
    expect(result.locator("h3")).to_have_text("SMTP: connect success!")
    expect(result.locator(".step")).not_to_have_count(0)
    expect(result.locator(".step", has_text="authenticated as")).to_be_visible()
    result.locator("summary", has_text="Detail").click()
    transcript = result.locator("pre")
    expect(transcript).to_be_visible()
    expect(transcript).to_contain_text("AUTH PLAIN ***")  # redacted at capture
    assert page.evaluate("window.__sameDocument") is True  # no page reload
    assert PEER_SECRET not in page.content()
    site.shot(page, "account-form-tested")

    save.click()
    expect(page).to_have_url(re.compile(r"/accounts/\d+$"))
    expect(page.get_by_role("status")).to_contain_text("Support desk saved.")
    assert PEER_SECRET not in page.content()

    page.get_by_role("button", name="Set default outgoing").click()
    expect(page.get_by_role("status")).to_contain_text("system default for outgoing")
    expect(page.locator("h1 .badge.default")).to_have_text("default outgoing")
    site.shot(page, "account-detail")

    page.goto(f"{site.url}/accounts/{page.url.rsplit('/', 1)[1]}/edit")
    for secret_field in ("outgoing.password", "incoming.password"):
        expect(field(page, secret_field)).to_have_value("")
    page.get_by_role("button", name="Save").click()  # empty password keeps the stored one
    expect(page.get_by_role("status")).to_contain_text("saved")
    expect(page.get_by_text("(password stored)")).to_be_visible()


def test_send_a_test_email_and_find_it_in_the_demo_inbox(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/accounts/{site.demo.account_id}")
    page.get_by_label("Send test e-mail to").fill("newcomer@example.com")
    page.get_by_role("button", name="Send test e-mail").click()
    expect(page.get_by_role("status")).to_contain_text("Test e-mail sent to newcomer@example.com")
    page.get_by_role("link", name="Demo inbox").click()
    mail = page.locator("article.mail", has_text="newcomer@example.com").first
    expect(mail.locator("h2")).to_have_text("Postroom test message from Demo")
    expect(mail.locator("pre")).to_contain_text("test message")
    site.shot(page, "demo-inbox")


def test_test_connection_of_a_saved_account_runs_live(page: Page, site: Site) -> None:
    page.goto(f"{site.url}/accounts/{site.demo.account_id}")
    page.get_by_role("button", name="Test connection").click()
    result = page.locator(".live-results .check")
    expect(result.locator("h3")).to_have_text("SMTP: connect success!")
    page.reload()
    expect(page.locator(".timeline")).to_contain_text("SMTP")


def test_deactivate_delete_with_confirmation_and_restore(page: Page, site: Site) -> None:
    account_id = smtp_account(site, "Lifecycle")
    page.goto(f"{site.url}/accounts/{account_id}")
    page.get_by_role("button", name="Deactivate").click()
    expect(page.locator("h1 .status")).to_have_text("inactive")
    page.goto(f"{site.url}/accounts?stage=inactive&team=all")
    expect(page.get_by_role("link", name="Lifecycle")).to_be_visible()

    page.get_by_role("link", name="Lifecycle").click()
    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_role("heading", name="Delete Lifecycle?")).to_be_visible()
    expect(page.locator("main")).to_contain_text("Stays:")
    page.get_by_role("button", name="Delete Lifecycle").click()
    expect(page.locator("h1 .status")).to_have_text("deleted")

    page.goto(f"{site.url}/accounts?stage=deleted&team=all")
    page.get_by_role("link", name="Lifecycle").click()
    page.get_by_role("button", name="Restore").click()
    expect(page.locator("h1 .status")).to_have_text("inactive")
    expect(page.get_by_role("status")).to_contain_text("Lifecycle is now inactive")


def test_export_the_mail_server_masters_report_as_csv(
    page: Page, site: Site, tmp_path: Path
) -> None:
    page.goto(f"{site.url}/reports/masters")
    expect(page.locator("table.report")).to_contain_text("Demo")
    page.emulate_media(media="print")  # the print stylesheet: the table only
    expect(page.get_by_role("navigation", name="Main")).to_be_hidden()
    expect(page.get_by_role("link", name="Export CSV")).to_be_hidden()
    expect(page.locator("table.report")).to_be_visible()
    page.emulate_media(media="screen")
    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    target = tmp_path / "masters.csv"
    info.value.save_as(target)
    rows = list(csv.DictReader(target.open(newline="")))
    demo = next(row for row in rows if row["name"] == "Demo")
    assert demo["outgoing_host"] == "127.0.0.1"
    assert demo["outgoing_port"] == str(site.demo.port)


def test_resend_from_the_failed_journal(page: Page, site: Site) -> None:
    account_id = smtp_account(site, "Refuser", send_mode=SendMode.IMMEDIATE)
    site.peer.refuse("nobody@example.test", "550 5.1.1 No such user")
    submitted = site.container.outbox.submit(
        Actor.system(),
        Draft(
            to=("nobody@example.test",), subject="Refused once", text="hi", account_id=account_id
        ),
    )
    assert submitted.message.status.value == "failed"
    page.goto(f"{site.url}/outbox?view=failed")
    row = page.locator("tr", has_text="Refused once")
    expect(row).to_be_visible()
    expect(page.locator('[data-status="failed"] b')).not_to_have_text("…")  # counters load
    site.shot(page, "outbox-failed")
    row.get_by_role("link", name="Refused once").click()
    expect(page.locator("main")).to_contain_text("550")
    page.get_by_role("button", name="Resend").click()
    expect(page.get_by_role("status")).to_contain_text("queued again")
    expect(page.locator("h1 .status")).to_have_text("queued")
    page.goto(f"{site.url}/outbox?view=queue")
    expect(page.locator("tr", has_text="Refused once")).to_be_visible()


class OtherOrigin:
    """Another origin on loopback (another port) serving pages a test puts in `pages`."""

    def __init__(self) -> None:
        pages: dict[str, bytes] = {}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = pages.get(self.path, b"")
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.pages = pages
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def other_origin() -> Iterator[OtherOrigin]:
    origin = OtherOrigin()
    yield origin
    origin.close()


def test_a_forged_cross_site_post_is_refused(
    page: Page, site: Site, other_origin: OtherOrigin
) -> None:
    account_id = smtp_account(site, "Target")
    other_origin.pages["/attack.html"] = (
        f'<form id="f" method="post" action="{site.url}/accounts/{account_id}/status/deactivate">'
        '<input name="csrf_token" value="guessed"></form>'
        "<script>document.getElementById('f').submit()</script>"
    ).encode()
    # The same logged-in browser context: its session cookie goes along with the forged POST
    # (another port of 127.0.0.1 is same-site), so only the CSRF defence stops it.
    with page.expect_response(re.compile(r"/status/deactivate$")) as info:
        page.goto(f"{other_origin.url}/attack.html")
    assert info.value.status == 403
    assert site.container.accounts.get(Actor.system(), account_id).status.value == "active"


def test_logs_filter_by_source_and_show_the_transcript(page: Page, site: Site) -> None:
    account_id = smtp_account(site, "Debugged")
    site.container.accounts.update(Actor.system(), account_id, {"debug": True})
    site.container.checks.check_account(Actor.system(), account_id)
    page.goto(f"{site.url}/logs")
    page.get_by_label("Source").select_option("SMTP Auth")
    page.get_by_label("Account").select_option(str(account_id))
    page.get_by_role("button", name="Filter").click()
    rows = page.locator("table.list tbody tr")
    expect(rows).to_have_count(1)
    site.shot(page, "logs")
    rows.first.get_by_role("link").first.click()
    expect(page.get_by_role("heading", name=re.compile(r"Log entry \d+"))).to_be_visible()
    expect(page.locator("details.transcript pre")).to_contain_text("220 peer.test")


def test_the_main_pages_as_a_user_sees_them(browser: Browser, page: Page, site: Site) -> None:
    for path, heading in (
        ("/accounts?team=all", "Accounts"),
        ("/outbox", "Outbox"),
        ("/inbox", "Inbox"),
        ("/settings", "My settings"),
        ("/admin", "Admin"),
        ("/notifications", "Notifications"),
    ):
        page.goto(site.url + path)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
    page.goto(site.url + "/accounts?team=all")
    site.shot(page, "accounts-list")
    phone = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    small = phone.new_page()
    log_in(small, site)
    expect(small.get_by_role("link", name="Demo", exact=True)).to_be_visible()
    site.shot(small, "accounts-list-phone")
    # On a phone the page itself never scrolls sideways; wide tables scroll inside their box.
    for path in (
        f"/accounts/{site.demo.account_id}",
        "/accounts/new",
        "/outbox",
        "/logs",
        "/admin",
        "/notifications",
        "/demo",
    ):
        small.goto(site.url + path)
        width = small.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{path} is {width} px wide on a 390 px phone"
    small.goto(f"{site.url}/accounts/{site.demo.account_id}")
    site.shot(small, "account-detail-phone")
    phone.close()


def test_an_inbox_message_renders_in_a_sandboxed_frame(page: Page, site: Site) -> None:
    from tests.integration.web.test_pages import MAIL

    draft = AccountDraft(
        name="Helpdesk",
        email="helpdesk@example.com",
        incoming=IncomingDraft(host="imap.example.com", username="desk"),
    )
    account_id = site.container.accounts.create(Actor.system(), draft).id
    site.container.inbox.ingest(account_id, MAIL)
    page.goto(f"{site.url}/inbox?account={account_id}")
    page.get_by_role("link", name="Invoice 42").click()
    frame = page.frame_locator("iframe[sandbox]")
    expect(frame.locator("b")).to_have_text("desk")
    expect(page.get_by_role("link", name="note.txt")).to_be_visible()
