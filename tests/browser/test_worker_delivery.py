"""The queued path end to end: a message submitted to the REST API with a token made in the
Admin page waits in the queue, the real embedded worker (as `postroom serve` runs it) delivers
it to the demo capture server, and the user finds it in the Sent archive, on the account's
Health widget and in the demo inbox."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from postroom.worker.runner import start_in_thread
from tests.browser.conftest import Site, logged_in, serve_site

pytestmark = pytest.mark.browser
SUBJECT = "Queued through the worker"
# Waiting, not measuring: the worker polls every second; give it ample time on a slow CI box.
PATIENCE_MS = 30_000


@pytest.fixture
def worker_site(tmp_path: Path) -> Iterator[Site]:
    """A site of its own, so the running worker cannot touch the other tests' queues."""
    with serve_site(tmp_path) as site:
        stop = start_in_thread(site.container, name="browser-test")
        try:
            yield site
        finally:
            stop()


def reload_until(page: Page, url: str, find: Callable[[Page], Locator]) -> Locator:
    """Open `url` again until `find(page)` matches (server-rendered pages do not update)."""
    waited = 0
    while True:
        page.goto(url)
        found = find(page)
        if found.count() or waited >= PATIENCE_MS:
            expect(found.first).to_be_visible()
            return found.first
        page.wait_for_timeout(200)
        waited += 200


def test_a_queued_message_is_delivered_by_the_worker_to_the_demo_inbox(
    browser: Browser, worker_site: Site
) -> None:
    site = worker_site
    with logged_in(browser, site) as page:
        page.goto(f"{site.url}/admin#tokens")
        page.get_by_label("Name", exact=True).last.fill("CRM integration")
        page.get_by_role("button", name="Create token").click()
        token = page.locator("#new-token").inner_text().strip()

        response = page.request.post(
            f"{site.url}/api/v1/messages",
            headers={"Authorization": f"Bearer {token}"},
            data={
                "to": ["reader@example.com"],
                "subject": SUBJECT,
                "text": "Sent by the queue, delivered by the worker.",
                "account_id": site.demo.account_id,
                "mode": "queued",
            },
        )
        assert response.status == 202, response.text()
        message = response.json()["message"]
        assert message["status"] == "queued"

        row = reload_until(
            page,
            f"{site.url}/outbox?view=sent",
            lambda p: p.locator("tr", has_text=SUBJECT),
        )
        expect(row.locator(".status")).to_have_text("sent")
        row.get_by_role("link", name=SUBJECT).click()
        expect(page.locator("h1 .status")).to_have_text("sent")
        expect(page.locator("main")).to_contain_text("reader@example.com")
        expect(page.locator("main")).to_contain_text("captured by the Postroom demo")
        expect(page.locator("main")).to_contain_text(message["message_id"])

        page.goto(f"{site.url}/accounts/{site.demo.account_id}")
        health = page.locator("#health-send")
        expect(health.get_by_role("link", name=SUBJECT)).to_be_visible()
        expect(health.locator('[data-status="sent"] b')).to_have_text("1")

        page.get_by_role("link", name="Demo inbox").click()
        mail = page.locator("article.mail", has_text=SUBJECT)
        expect(mail).to_have_count(1)
        expect(mail).to_contain_text("reader@example.com")
        expect(mail.locator("pre")).to_contain_text("delivered by the worker")
