"""The demo capture server and Demo account, the live-test stream, and form parsing."""

from __future__ import annotations

import json
import smtplib

from postroom.domain.accounts import AuthMode, Security, SendMode
from postroom.domain.people import Actor, Role
from postroom.web import forms
from postroom.web.demo import DEMO_NAME, prepare_demo
from tests.integration.web.conftest import Web, csrf_of


def test_prepare_demo_points_the_demo_account_at_each_new_capture_server(web: Web) -> None:
    first = prepare_demo(web.container)
    first.stop()
    second = prepare_demo(web.container)
    try:
        assert second.account_id == first.account_id
        account = web.container.accounts.get(Actor.system(), second.account_id)
        assert account.name == DEMO_NAME
        assert account.status.value == "active"
        assert account.is_default_outgoing
        assert account.outgoing is not None
        assert (account.outgoing.host, account.outgoing.port) == ("127.0.0.1", second.port)
        assert account.outgoing.send_mode is SendMode.IMMEDIATE
        assert account.outgoing.auth_mode is AuthMode.NONE
        with smtplib.SMTP("127.0.0.1", second.port, timeout=5) as smtp:
            smtp.sendmail(
                "a@example.com",
                ["b@example.com"],
                b"Subject: Hello demo\r\nFrom: a@example.com\r\nTo: b@example.com\r\n\r\nBody text\r\n",
            )
        web.user("boss@example.com", Role.ADMIN)
        page = web.login("boss@example.com").get("/demo").text
        assert "Hello demo" in page
        assert "Body text" in page
        assert "b@example.com" in page
    finally:
        second.stop()


def test_the_demo_inbox_is_absent_without_the_demo(web: Web) -> None:
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    assert client.get("/demo").status_code == 404
    assert "Demo inbox" not in client.get("/accounts").text


def test_the_live_test_stream_reports_unreadable_values_at_their_fields(web: Web) -> None:
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    values = forms.blank() | {"name": "X", "email": "x@example.com", "outgoing.port": "abc"}
    response = client.post(
        "/accounts/check", data=values, headers={"X-CSRF-Token": csrf_of(client, "/accounts")}
    )
    assert response.headers["content-type"].startswith("application/x-ndjson")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert lines == [{"errors": {"outgoing.port": "must be a number"}}]


def test_the_live_test_stream_sends_one_result_per_protocol(web: Web) -> None:
    handle = prepare_demo(web.container)
    try:
        web.user("boss@example.com", Role.ADMIN)
        client = web.login("boss@example.com")
        values = forms.blank() | {
            "name": "Probe",
            "email": "probe@example.com",
            "outgoing.host": "127.0.0.1",
            "outgoing.port": str(handle.port),
            "outgoing.security": "none",
            "outgoing.auth_mode": "none",
        }
        token = csrf_of(client, "/accounts")
        response = client.post("/accounts/check", data=values, headers={"X-CSRF-Token": token})
        first, result = (json.loads(line) for line in response.text.splitlines())
        assert first == {"protocols": ["smtp"]}
        assert result["protocol"] == "smtp"
        assert result["ok"] is True
        assert [s["name"] for s in result["steps"]][:3] == ["connect", "tls", "greeting"]
        # Without JavaScript the same button posts the form and the page shows the result.
        page = client.post("/accounts/new", data=values | {"csrf_token": token, "intent": "test"})
        assert page.status_code == 200
        assert "SMTP: connect success!" in page.text
    finally:
        handle.stop()


def test_form_parsing_types_the_values_and_names_the_unreadable_fields() -> None:
    values, errors = forms.parse(
        {
            "name": " Help ",
            "email": "help@example.com",
            "team_id": "",
            "has_outgoing": "on",
            "outgoing.transport": "smtp",
            "outgoing.security": "bogus",
            "outgoing.auth_mode": "central",
            "outgoing.send_mode": "queued",
            "outgoing.port": "",
            "outgoing.timeout_s": "30",
            "outgoing.max_messages_per_connection": "x",
            "outgoing.password": "",
        }
    )
    assert values["name"] == "Help"
    assert values["team_id"] is None
    assert values["incoming"] is None
    assert values["outgoing"]["port"] is None  # the conventional port for the security
    assert "password" not in values["outgoing"]  # empty: keep the stored one
    assert values["outgoing"]["auth_mode"] is AuthMode.CENTRAL
    assert set(errors) == {"outgoing.security", "outgoing.max_messages_per_connection"}


def test_an_account_round_trips_through_the_form() -> None:
    values, errors = forms.parse(
        forms.blank() | {"name": "R", "email": "r@example.com", "outgoing.host": "smtp.x.org"}
    )
    assert not errors
    draft = forms.to_draft(values)
    assert draft.outgoing is not None
    assert draft.outgoing.security is Security.STARTTLS
    assert draft.incoming is None
