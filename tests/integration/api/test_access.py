"""Who may do what: 401 without a token on every API route but health, and the access matrix —
a member or manager of team A can neither read nor change anything of team B, on every route
that takes an account id (routes are enumerated from the app, so a new one cannot slip by)."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from .conftest import World, create_account, error_fields

PUBLIC = {("GET", "/api/v1/health")}
# Bodies that pass validation, so that access (not input) is what decides the answer.
SAMPLES: dict[tuple[str, str], dict[str, Any]] = {
    ("PATCH", "/api/v1/accounts/{account_id}"): {"json": {"label": "taken over"}},
    ("POST", "/api/v1/accounts/{account_id}/comments"): {"json": {"body": "hello"}},
    ("POST", "/api/v1/accounts/{account_id}/set-default"): {"params": {"direction": "outgoing"}},
    ("PUT", "/api/v1/me/credentials/{account_id}"): {
        "json": {"username": "me", "password": "my-own-password"}
    },
}


def api_routes(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path template) of every API route the app serves, included routers too."""
    found = []
    for ctx in iter_route_contexts(app.routes):
        if isinstance(ctx.original_route, APIRoute) and ctx.path.startswith("/api/"):
            found.extend((method, ctx.path) for method in sorted(ctx.methods or ()))
    # Guard the guard: if enumeration broke, the loops below would pass vacuously.
    assert ("POST", "/api/v1/accounts/{account_id}/restore") in found
    assert ("GET", "/api/v1/reports/mail-server-masters.csv") in found
    return found


def call(
    client: TestClient, method: str, template: str, headers: dict[str, str], **ids: int
) -> Any:
    path = re.sub(r"\{(\w+)[^}]*\}", lambda m: str(ids.get(m.group(1), 1)), template)
    kwargs = SAMPLES.get((method, template))
    if kwargs is None:
        kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
    return client.request(method, path, headers=headers, **kwargs)


def test_every_route_but_health_answers_401_without_a_valid_token(client: TestClient) -> None:
    routes = api_routes(client.app)  # type: ignore[arg-type]
    assert len(routes) > 30
    bad_headers: list[dict[str, str]] = [
        {},
        {"Authorization": "Bearer pr_not-a-real-token"},
        {"Authorization": "Basic YWRtaW46YWRtaW4="},
        {"Authorization": "Bearer "},
    ]
    for method, template in routes:
        for headers in bad_headers:
            r = call(client, method, template, headers)
            if (method, template) in PUBLIC:
                assert r.status_code == 200
                continue
            assert r.status_code == 401, (method, template, headers, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
            assert r.json()["type"].endswith("/unauthenticated")


def _snapshot(client: TestClient, admin: dict[str, str], account_id: int) -> Any:
    url = f"/api/v1/accounts/{account_id}"
    return (
        client.get(url, headers=admin).json(),
        client.get(f"{url}/audit", headers=admin).json()["total"],
        client.get(f"{url}/comments", headers=admin).json(),
        client.get("/api/v1/logs", params={"account_id": account_id}, headers=admin).json()[
            "total"
        ],
    )


def test_team_a_can_neither_read_nor_change_team_b(client: TestClient, world: World) -> None:
    theirs = create_account(client, world.manager_b, "Bravo Secret Name", world.team_b)
    before = _snapshot(client, world.admin, theirs["id"])
    routes = [r for r in api_routes(client.app) if "{account_id}" in r[1]]  # type: ignore[arg-type]
    assert len(routes) >= 14
    for headers in (world.member_a, world.manager_a):
        for method, template in routes:
            r = call(client, method, template, headers, account_id=theirs["id"])
            where = (method, template, r.status_code, r.text)
            assert "Bravo" not in r.text, where
            if method == "GET":
                assert r.status_code == 404, where
            elif r.status_code == 422:
                # Refused on the input alone, before anything was looked up.
                assert "account_id" not in error_fields(r), where
            else:
                assert r.status_code in (403, 404), where
    assert _snapshot(client, world.admin, theirs["id"]) == before
    # Nor through the lists and reports.
    for headers in (world.member_a, world.manager_a):
        listed = client.get("/api/v1/accounts", params={"status": "all"}, headers=headers)
        assert listed.json()["total"] == 0
        assert "Bravo" not in listed.text
        filtered = client.get("/api/v1/accounts", params={"team_id": world.team_b}, headers=headers)
        assert filtered.json()["items"] == []
        report = client.get("/api/v1/reports/mail-server-masters", headers=headers)
        assert report.status_code == 200
        assert "Bravo" not in report.text


def test_roles_on_their_own_team(client: TestClient, world: World) -> None:
    ours = create_account(client, world.manager_a, "Alpha", world.team_a)["id"]
    url = f"/api/v1/accounts/{ours}"
    # A member reads, comments and sees the timeline, but changes nothing.
    assert client.get(url, headers=world.member_a).status_code == 200
    assert client.get(f"{url}/timeline", headers=world.member_a).status_code == 200
    comment = client.post(f"{url}/comments", json={"body": "ok"}, headers=world.member_a)
    assert comment.status_code == 201
    for method, path, kwargs in [
        ("PATCH", url, {"json": {"label": "x"}}),
        ("POST", f"{url}/deactivate", {}),
        ("POST", f"{url}/delete", {}),
        ("POST", f"{url}/set-default", {"params": {"direction": "outgoing"}}),
    ]:
        r = client.request(method, path, headers=world.member_a, **kwargs)
        assert r.status_code == 403, (method, path, r.text)
    member_create = client.post(
        "/api/v1/accounts",
        json={"name": "M", "email": "m@example.com", "team_id": world.team_a},
        headers=world.member_a,
    )
    assert member_create.status_code == 403
    # A manager changes their team's accounts, but cannot move one to another team, create in
    # another team, or create system-wide ones.
    assert client.patch(url, json={"label": "y"}, headers=world.manager_a).status_code == 200
    assert client.post(f"{url}/deactivate", headers=world.manager_a).status_code == 200
    moved = client.patch(url, json={"team_id": world.team_b}, headers=world.manager_a)
    assert moved.status_code == 403
    for team_id in (world.team_b, None):
        r = client.post(
            "/api/v1/accounts",
            json={"name": f"N{team_id}", "email": "n@example.com", "team_id": team_id},
            headers=world.manager_a,
        )
        assert r.status_code == 403, r.text
    # An admin does everything, everywhere, including moving it.
    moved = client.patch(url, json={"team_id": world.team_b}, headers=world.admin)
    assert moved.status_code == 200
    assert moved.json()["team_id"] == world.team_b
    assert client.get(url, headers=world.member_a).status_code == 404


def test_system_wide_accounts_are_visible_to_all_and_changed_by_admins(
    client: TestClient, world: World
) -> None:
    shared = create_account(client, world.admin, "Shared")["id"]
    url = f"/api/v1/accounts/{shared}"
    for headers in (world.member_a, world.manager_b):
        assert client.get(url, headers=headers).status_code == 200
        assert client.patch(url, json={"label": "x"}, headers=headers).status_code == 403
    assert client.get("/api/v1/accounts", headers=world.member_b).json()["total"] == 1
