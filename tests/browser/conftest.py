"""The browser harness: a real uvicorn server in a thread on a run-time loopback port, a temp
SQLite database with the demo capture server and its Demo account, and Debian's Chromium
driven by Playwright (sync API)."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from postroom.api.app import create_app
from postroom.settings import load_settings
from postroom.testing.peers import SmtpPeer
from postroom.testing.services import missing_service
from postroom.web.demo import ADMIN_EMAIL, DemoHandle, ensure_admin, prepare_demo
from postroom.wiring import Container, build

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
# The README's screenshots are refreshed with `make screenshots` (POSTROOM_SCREENSHOTS=1); other
# runs still take every screenshot, into a scratch folder, so a test run leaves the tree clean.
SCREENSHOTS = (
    Path(__file__).resolve().parents[2] / "docs" / "screenshots"
    if os.environ.get("POSTROOM_SCREENSHOTS") == "1"
    else Path(tempfile.gettempdir()) / "postroom-screenshots"
)
PEER_USER, PEER_SECRET = "clerk", "Pa55-very-secret-word"


@dataclass
class Site:
    url: str
    container: Container
    demo: DemoHandle
    admin_password: str
    peer: SmtpPeer

    def shot(self, page: Page, name: str) -> None:
        """Save a full-page screenshot of `page` as <SCREENSHOTS>/<name>.png."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@contextmanager
def serve_site(tmp: Path) -> Iterator[Site]:
    """A fresh database with the demo and its admin, served by uvicorn on a run-time port."""
    container = build(load_settings(database_url=f"sqlite:///{tmp}/t.db", var_dir=tmp, env="test"))
    container.migrate()
    password = ensure_admin(container)
    assert password is not None
    demo = prepare_demo(container)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    config = uvicorn.Config(create_app(container), log_level="warning", lifespan="off", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    try:
        with SmtpPeer(users={PEER_USER: PEER_SECRET}) as peer:
            yield Site(f"http://127.0.0.1:{port}", container, demo, password, peer)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        demo.stop()
        container.close()


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with serve_site(tmp_path_factory.mktemp("web")) as served:
        yield served


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        missing_service("Chromium (/usr/bin/chromium) is not installed")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


def log_in(page: Page, site: Site, email: str = ADMIN_EMAIL, password: str = "") -> None:
    page.goto(f"{site.url}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password or site.admin_password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.url}/accounts")


@contextmanager
def logged_in(browser: Browser, site: Site, width: int = 1280, height: int = 900) -> Iterator[Page]:
    """A fresh browser context (own cookies) of `width` by `height`, logged in as the admin."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    log_in(page, site)
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, site: Site) -> Iterator[Page]:
    with logged_in(browser, site) as page:
        yield page
