"""Teams, users, tokens, work locations and the caller's own settings (me)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from postroom.wiring import Container

from .conftest import SECRET, World, auth, create_account, error_fields


def test_teams_and_locations(client: TestClient, world: World) -> None:
    r = client.post("/api/v1/teams", json={"name": "Support"}, headers=world.admin)
    assert r.status_code == 201
    assert r.json()["name"] == "Support"
    assert (
        client.post("/api/v1/teams", json={"name": "support"}, headers=world.admin).status_code
        == 409
    )
    assert (
        client.post("/api/v1/teams", json={"name": "X"}, headers=world.manager_a).status_code == 403
    )
    assert "name" in error_fields(client.post("/api/v1/teams", json={}, headers=world.admin))
    assert len(client.get("/api/v1/teams", headers=world.admin).json()) == 3
    assert [t["name"] for t in client.get("/api/v1/teams", headers=world.member_a).json()] == [
        "Team A"
    ]
    loc = client.post(
        "/api/v1/locations", json={"name": "Kraków", "address": "Rynek 1"}, headers=world.admin
    )
    assert loc.status_code == 201
    assert (
        client.post("/api/v1/locations", json={"name": "Y"}, headers=world.member_a).status_code
        == 403
    )
    assert [x["name"] for x in client.get("/api/v1/locations", headers=world.member_a).json()] == [
        "Kraków"
    ]


def test_users_create_get_patch(client: TestClient, world: World) -> None:
    body = {"email": "New@Example.com", "role": "member", "team_ids": [world.team_a]}
    created = client.post("/api/v1/users", json={**body, "password": SECRET}, headers=world.admin)
    assert created.status_code == 201, created.text
    user = created.json()
    assert user["email"] == "new@example.com"
    assert user["team_ids"] == [world.team_a]
    assert SECRET not in created.text
    assert "password" not in user
    assert client.post("/api/v1/users", json=body, headers=world.admin).status_code == 409
    assert client.post("/api/v1/users", json=body, headers=world.manager_a).status_code == 403
    bad = client.post("/api/v1/users", json={**body, "role": "owner"}, headers=world.admin)
    assert "role" in error_fields(bad)
    crlf = client.post(
        "/api/v1/users", json={**body, "email": "x@example.com\r\nBcc: y"}, headers=world.admin
    )
    assert "line breaks" in error_fields(crlf)["email"]
    url = f"/api/v1/users/{user['id']}"
    patched = client.patch(url, json={"role": "manager", "name": "Nina"}, headers=world.admin)
    assert (patched.json()["role"], patched.json()["name"]) == ("manager", "Nina")
    assert patched.json()["team_ids"] == [world.team_a]  # not sent, not changed
    assert client.patch(url, json={"name": "x"}, headers=world.manager_a).status_code == 403
    assert client.get(url, headers=world.member_b).status_code == 404
    assert "name" in error_fields(client.patch(url, json={"name": "a\nb"}, headers=world.admin))
    # Teammates see each other; other teams' people are not listed.
    emails = {u["email"] for u in client.get("/api/v1/users", headers=world.member_b).json()}
    assert emails == {"manager.b@example.com", "member.b@example.com"}


def test_tokens_are_shown_once_and_revocable(client: TestClient, world: World) -> None:
    created = client.post("/api/v1/tokens", json={"name": "ci"}, headers=world.member_a)
    assert created.status_code == 201
    token = created.json()["token"]
    me = client.get("/api/v1/me", headers=auth(token))
    assert me.status_code == 200
    assert me.json()["email"] == "member.a@example.com"
    listed = client.get("/api/v1/tokens", headers=world.member_a)
    assert token not in listed.text
    mine = [t for t in listed.json() if t["name"] == "ci"]
    assert len(mine) == 1
    assert token.startswith(mine[0]["prefix"])
    # Only an admin creates tokens for someone else; a token id of another user is invisible.
    other = client.post(
        "/api/v1/tokens", json={"user_id": mine[0]["user_id"]}, headers=world.member_b
    )
    assert other.status_code == 403
    revoke_url = f"/api/v1/tokens/{mine[0]['id']}/revoke"
    assert client.post(revoke_url, headers=world.member_b).status_code == 404
    assert client.post(revoke_url, headers=world.member_a).status_code == 204
    assert client.get("/api/v1/me", headers=auth(token)).status_code == 401
    assert len(client.get("/api/v1/tokens", headers=world.admin).json()) == 6


def test_work_location_and_per_employee_credentials(
    client: TestClient, world: World, container: Container
) -> None:
    loc = client.post("/api/v1/locations", json={"name": "Gdańsk"}, headers=world.admin).json()
    r = client.put(
        "/api/v1/me/work-location", json={"work_location_id": loc["id"]}, headers=world.member_a
    )
    assert r.status_code == 200
    assert r.json()["work_location_id"] == loc["id"]
    unknown = client.put(
        "/api/v1/me/work-location", json={"work_location_id": 999}, headers=world.member_a
    )
    assert unknown.status_code == 404
    cleared = client.put(
        "/api/v1/me/work-location", json={"work_location_id": None}, headers=world.member_a
    )
    assert cleared.json()["work_location_id"] is None

    account = create_account(client, world.manager_a, "Shared Desk", world.team_a)
    url = f"/api/v1/me/credentials/{account['id']}"
    central = client.put(url, json={"username": "me", "password": SECRET}, headers=world.member_a)
    assert central.status_code == 409  # the account uses central credentials
    client.patch(
        f"/api/v1/accounts/{account['id']}",
        json={"outgoing": {"auth_mode": "per_employee"}},
        headers=world.manager_a,
    )
    assert client.get(url, headers=world.member_a).status_code == 404
    stored = client.put(url, json={"username": "anna", "password": SECRET}, headers=world.member_a)
    assert stored.status_code == 200, stored.text
    assert stored.json()["has_password"] is True
    assert SECRET not in stored.text
    renamed = client.put(url, json={"username": "anna.k"}, headers=world.member_a)
    assert renamed.json()["username"] == "anna.k"
    user_id = client.get("/api/v1/me", headers=world.member_a).json()["id"]
    _, endpoint = container.accounts.outgoing_endpoint(account["id"], sender_user_id=user_id)
    assert endpoint.username == "anna.k"  # the empty password kept the stored one
    assert endpoint.password is not None
    assert endpoint.password.reveal() == SECRET
    assert [
        c["account_id"] for c in client.get("/api/v1/me/credentials", headers=world.member_a).json()
    ] == [account["id"]]
    crlf = client.put(url, json={"username": "a\r\nb"}, headers=world.member_a)
    assert "username" in error_fields(crlf)
    assert client.delete(url, headers=world.member_a).status_code == 204
    assert client.delete(url, headers=world.member_a).status_code == 404
