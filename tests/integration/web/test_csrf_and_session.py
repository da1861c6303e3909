"""CSRF on every state-changing request, and the session cookie's flags."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from postroom.domain.accounts import AccountDraft, AuthMode, OutgoingDraft, Security
from postroom.domain.people import Actor, Role
from postroom.web.demo import ensure_admin
from postroom.web.session import COOKIE
from tests.integration.web.conftest import PASSWORD, Web, build_container, csrf_of


def _account(web: Web) -> int:
    draft = AccountDraft(
        name="Sales",
        email="sales@example.com",
        outgoing=OutgoingDraft(
            host="smtp.example.com", security=Security.SSL, auth_mode=AuthMode.NONE
        ),
    )
    return web.container.accounts.create(Actor.system(), draft).id


def test_a_post_without_the_session_token_is_refused_and_changes_nothing(web: Web) -> None:
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    account_id = _account(web)
    url = f"/accounts/{account_id}/status/deactivate"
    assert client.post(url).status_code == 403
    assert client.post(url, data={"csrf_token": "forged"}).status_code == 403
    assert client.post(url, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert web.container.accounts.get(Actor.system(), account_id).status.value == "active"


def test_a_post_from_another_origin_is_refused_even_with_the_token(web: Web) -> None:
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    account_id = _account(web)
    token = csrf_of(client, f"/accounts/{account_id}")
    url = f"/accounts/{account_id}/status/deactivate"
    forged = client.post(url, data={"csrf_token": token}, headers={"Origin": "http://evil.test"})
    assert forged.status_code == 403
    ok = client.post(url, data={"csrf_token": token}, headers={"Origin": "http://testserver"})
    assert ok.status_code == 303
    assert web.container.accounts.get(Actor.system(), account_id).status.value == "inactive"


def test_the_login_form_needs_the_token_too(web: Web) -> None:
    web.user("boss@example.com", Role.ADMIN)
    client = web.client()
    response = client.post("/login", data={"email": "boss@example.com", "password": PASSWORD})
    assert response.status_code == 403


def test_login_issues_a_new_token_so_a_planted_one_stops_working(web: Web) -> None:
    web.user("boss@example.com", Role.ADMIN)
    client = web.client()
    before = csrf_of(client, "/login")
    client.post(
        "/login", data={"email": "boss@example.com", "password": PASSWORD, "csrf_token": before}
    )
    assert csrf_of(client, "/accounts") != before


def test_the_session_cookie_is_httponly_and_samesite_lax(web: Web) -> None:
    web.user("boss@example.com", Role.ADMIN)
    client = web.client()
    response = client.get("/login")
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith(COOKIE)
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "secure" not in cookie  # plain HTTP on loopback outside production


def test_the_session_cookie_is_secure_in_production(tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    container = build_container(
        tmp_path, env="production", secret_key=Fernet.generate_key().decode()
    )
    try:
        from fastapi.testclient import TestClient

        from postroom.api.app import create_app

        client = TestClient(create_app(container), base_url="https://testserver")
        cookie = client.get("/login").headers["set-cookie"].lower()
        assert "; secure" in cookie
        assert "httponly" in cookie
    finally:
        container.close()


def test_a_tampered_cookie_is_no_session(web: Web) -> None:
    """Signed, not trusted: a cookie whose payload names another user is ignored."""
    web.user("member@example.com", Role.MEMBER)
    admin_id = web.user("boss@example.com", Role.ADMIN)
    value = web.login("member@example.com").cookies[COOKIE]
    payload, _, signature = value.partition(".")
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data["u"] = admin_id
    forged = base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")
    client = web.client()
    client.cookies.set(COOKIE, f"{forged}.{signature}")
    response = client.get("/accounts")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_logout_ends_the_session(web: Web) -> None:
    web.user("boss@example.com", Role.ADMIN)
    client = web.login("boss@example.com")
    assert client.get("/accounts").status_code == 200
    client.post("/logout", data={"csrf_token": csrf_of(client, "/accounts")})
    assert client.get("/accounts").status_code == 303


def test_a_wrong_password_says_so_without_naming_which_part_was_wrong(web: Web) -> None:
    web.user("boss@example.com", Role.ADMIN)
    client = web.client()
    token = csrf_of(client, "/login")
    for email in ("boss@example.com", "nobody@example.com"):
        response = client.post(
            "/login", data={"email": email, "password": "wrong password!", "csrf_token": token}
        )
        assert response.status_code == 401
        assert "wrong e-mail or password" in response.text


def test_login_redirects_only_to_local_paths(web: Web) -> None:
    web.user("boss@example.com", Role.ADMIN)
    client = web.client()
    token = csrf_of(client, "/login")
    response = client.post(
        "/login",
        data={
            "email": "boss@example.com",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.test/",
        },
    )
    assert response.headers["location"] == "/accounts"


def test_ensure_admin_creates_the_first_admin_once(web: Web) -> None:
    password = ensure_admin(web.container)
    assert password is not None
    assert len(password) >= 10
    assert ensure_admin(web.container) is None
    client = web.client()
    response = client.post(
        "/login",
        data={
            "email": "admin@postroom.local",
            "password": password,
            "csrf_token": csrf_of(client, "/login"),
        },
    )
    assert response.status_code == 303


def test_pages_forbid_framing_by_others_and_foreign_scripts(web: Web) -> None:
    policy = web.client().get("/login").headers["content-security-policy"]
    assert "frame-ancestors 'self'" in policy
    assert "default-src 'self'" in policy
    assert "unsafe-inline" not in policy.split("style-src", 1)[0]  # no inline scripts
