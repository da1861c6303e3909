"""Navigation by role, team isolation in pages, and no secret in any HTML."""

from __future__ import annotations

import re

import pytest

from postroom.domain.accounts import (
    AccountDraft,
    AuthMode,
    IncomingDraft,
    OutgoingDraft,
    Security,
)
from postroom.domain.people import Actor, Role
from postroom.web import forms
from tests.integration.web.conftest import Web, csrf_of

SECRET_OUT, SECRET_IN, SECRET_MINE = "out-Secret-4711", "in-Secret-0815", "my-Own-Secret-42"


def _nav(html: str) -> list[str]:
    nav = html.split('aria-label="Main"', 1)[1].split("</nav>", 1)[0]
    return re.findall(r">([^<>]+)</a>", nav)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        (Role.MEMBER, ["Accounts", "Outbox", "Inbox", "Logs"]),
        (Role.MANAGER, ["Accounts", "Outbox", "Inbox", "Logs", "Reports"]),
        (Role.ADMIN, ["Accounts", "Outbox", "Inbox", "Logs", "Reports", "Admin", "Notifications"]),
    ],
)
def test_navigation_follows_the_role(web: Web, role: Role, expected: list[str]) -> None:
    web.user("someone@example.com", role)
    html = web.login("someone@example.com").get("/accounts").text
    assert _nav(html) == expected


def test_a_member_cannot_open_admin_nor_see_another_teams_account(web: Web) -> None:
    people = web.container.people
    team_a = people.create_team(Actor.system(), "A").id
    team_b = people.create_team(Actor.system(), "B").id
    web.user("member@example.com", Role.MEMBER, [team_a])
    draft = AccountDraft(
        name="B only",
        email="b@example.com",
        team_id=team_b,
        outgoing=OutgoingDraft(host="smtp.example.com", auth_mode=AuthMode.NONE),
    )
    hidden = web.container.accounts.create(Actor.system(), draft).id
    client = web.login("member@example.com")
    assert client.get("/admin").status_code == 403
    assert client.get(f"/accounts/{hidden}").status_code == 404
    assert "B only" not in client.get("/accounts?team=all").text
    token = csrf_of(client, "/accounts")
    refused = client.post(f"/accounts/{hidden}/status/deactivate", data={"csrf_token": token})
    assert refused.status_code == 404
    assert "New account" not in client.get("/accounts").text


def _form(**overrides: str) -> dict[str, str]:
    values = forms.blank() | {
        "name": "Secretive",
        "email": "secretive@example.com",
        "has_incoming": "on",
        "outgoing.host": "smtp.example.com",
        "outgoing.security": "ssl",
        "outgoing.username": "clerk",
        "outgoing.password": SECRET_OUT,
        "incoming.host": "imap.example.com",
        "incoming.username": "clerk",
        "incoming.password": SECRET_IN,
        "intent": "save",
    }
    return values | overrides


def test_no_page_ever_shows_a_stored_or_submitted_password(web: Web) -> None:
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    token = csrf_of(client, "/accounts/new")
    # A rejected form comes back with the values typed — but never the passwords.
    rejected = client.post("/accounts/new", data=_form(email="not-an-address", csrf_token=token))
    assert rejected.status_code == 422
    assert "is not an e-mail address" in rejected.text
    assert SECRET_OUT not in rejected.text
    assert SECRET_IN not in rejected.text
    saved = client.post("/accounts/new", data=_form(csrf_token=token))
    assert saved.status_code == 303
    account_id = int(saved.headers["location"].rsplit("/", 1)[1])

    # An edit with empty passwords keeps the stored ones.
    edit = forms.from_account(web.container.accounts.get(Actor.system(), account_id))
    kept = client.post(
        f"/accounts/{account_id}/edit", data=edit | {"csrf_token": token, "label": "kept"}
    )
    assert kept.status_code == 303
    accounts = web.container.accounts
    assert accounts.stored_password(account_id, "outgoing") == SECRET_OUT
    assert accounts.stored_password(account_id, "incoming") == SECRET_IN

    pages = [
        "/accounts",
        f"/accounts/{account_id}",
        f"/accounts/{account_id}/edit",
        f"/accounts/{account_id}/delete",
        "/logs",
        "/reports/masters",
        "/reports/masters.csv",
        "/admin",
        "/settings",
        "/outbox",
    ]
    for path in pages:
        html = client.get(path).text
        for secret in (SECRET_OUT, SECRET_IN):
            assert secret not in html, f"{secret} shown on {path}"
        assert re.search(r'type="password" value="[^"]', html) is None, path


def test_my_credentials_are_stored_but_never_shown(web: Web) -> None:
    web.user("clerk@example.com", Role.MEMBER)
    draft = AccountDraft(
        name="Per person",
        email="pp@example.com",
        outgoing=OutgoingDraft(
            host="smtp.example.com", security=Security.SSL, auth_mode=AuthMode.PER_EMPLOYEE
        ),
        incoming=IncomingDraft(host="imap.example.com", username="shared"),
    )
    account_id = web.container.accounts.create(Actor.system(), draft).id
    client = web.login("clerk@example.com")
    token = csrf_of(client, "/settings")
    response = client.post(
        f"/settings/credentials/{account_id}",
        data={"csrf_token": token, "username": "clerk", "password": SECRET_MINE},
    )
    assert response.status_code == 303
    page = client.get("/settings").text
    assert "Your credentials were saved." in page
    assert 'value="clerk"' in page
    assert SECRET_MINE not in page


def test_a_new_api_token_is_shown_once(web: Web) -> None:
    user_id = web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    token = csrf_of(client, "/admin")
    response = client.post("/admin/tokens", data={"csrf_token": token, "user_id": str(user_id)})
    shown = re.search(r'id="new-token">([^<]+)<', response.text)
    assert shown is not None
    assert response.headers["cache-control"] == "no-store"
    assert web.container.people.authenticate(shown.group(1)).email == "boss@example.com"
    assert shown.group(1) not in client.get("/admin").text
