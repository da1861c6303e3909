"""The accounts API: CRUD, PATCH semantics, lifecycle, defaults, validation, secrets, limits."""

from __future__ import annotations

import logging
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from postroom.storage.tables.core import accounts, audit_entries
from postroom.testing.peers import SmtpPeer
from postroom.wiring import Container

from .conftest import (
    BODY_LIMIT,
    SECRET,
    World,
    account_body,
    create_account,
    error_fields,
)

URL = "/api/v1/accounts"


def _counts(container: Container) -> tuple[int, int]:
    with container.engine.connect() as conn:
        n_accounts = conn.execute(sa.select(sa.func.count()).select_from(accounts)).scalar_one()
        n_audit = conn.execute(sa.select(sa.func.count()).select_from(audit_entries)).scalar_one()
    return n_accounts, n_audit


def test_create_get_list_and_patch(client: TestClient, world: World) -> None:
    created = create_account(client, world.manager_a, "Sales", world.team_a)
    assert created["status"] == "active"
    assert created["outgoing"]["port"] == 587  # STARTTLS default
    assert created["outgoing"]["has_password"] is True
    assert created["incoming"]["port"] == 993
    assert created["created_by"] == "manager.a@example.com"
    assert created["health"] == {
        "last_check_at": None,
        "last_ok_at": None,
        "failing_since": None,
        "last_error": "",
    }
    url = f"{URL}/{created['id']}"
    assert client.get(url, headers=world.member_a).json()["name"] == "Sales"

    patched = client.patch(
        url, json={"label": "EU", "outgoing": {"security": "ssl"}}, headers=world.manager_a
    )
    assert patched.status_code == 200, patched.text
    out = patched.json()["outgoing"]
    # Nested merge: only security changed; host, username and the stored password stay.
    assert (out["security"], out["host"], out["username"], out["has_password"]) == (
        "ssl",
        "smtp.example.com",
        "out-user",
        True,
    )
    assert patched.json()["label"] == "EU"

    page = client.get(URL, params={"q": "sal", "team_id": world.team_a}, headers=world.member_a)
    assert page.status_code == 200
    body = page.json()
    assert (body["total"], body["offset"], body["limit"]) == (1, 0, 50)
    assert body["items"][0]["label"] == "EU"
    assert "health" in body["items"][0]


def test_list_pages_sorts_and_filters_by_status(client: TestClient, world: World) -> None:
    ids = [create_account(client, world.admin, f"Acc {i}")["id"] for i in range(5)]
    client.post(f"{URL}/{ids[0]}/deactivate", headers=world.admin)
    page = client.get(URL, params={"limit": 2, "offset": 1, "sort": "-name"}, headers=world.admin)
    assert [a["name"] for a in page.json()["items"]] == ["Acc 3", "Acc 2"]
    assert page.json()["total"] == 4
    inactive = client.get(URL, params={"status": "inactive"}, headers=world.admin).json()
    assert [a["id"] for a in inactive["items"]] == [ids[0]]
    assert client.get(URL, params={"status": "all"}, headers=world.admin).json()["total"] == 5
    bad = client.get(URL, params={"sort": "password"}, headers=world.admin)
    assert bad.status_code == 422
    assert "sort" in error_fields(bad)
    assert "limit" in error_fields(client.get(URL, params={"limit": 0}, headers=world.admin))


def test_patch_can_remove_a_part_and_keeps_password_when_blank(
    client: TestClient, world: World, container: Container
) -> None:
    created = create_account(client, world.admin, "Parts")
    url = f"{URL}/{created['id']}"
    keep = client.patch(url, json={"incoming": {"password": ""}}, headers=world.admin)
    assert keep.json()["incoming"]["has_password"] is True
    assert container.accounts.stored_password(created["id"], "incoming") == SECRET
    removed = client.patch(url, json={"incoming": None}, headers=world.admin)
    assert removed.status_code == 200
    assert removed.json()["incoming"] is None
    assert removed.json()["outgoing"]["has_password"] is True


def test_lifecycle_and_illegal_transition_is_409_with_reason(
    client: TestClient, world: World
) -> None:
    url = f"{URL}/{create_account(client, world.admin, 'Cycle')['id']}"
    assert client.post(f"{url}/deactivate", headers=world.admin).json()["status"] == "inactive"
    assert client.post(f"{url}/delete", headers=world.admin).json()["status"] == "deleted"
    refused = client.post(f"{url}/activate", headers=world.admin)
    assert refused.status_code == 409
    assert refused.json()["detail"] == "cannot activate an account that is deleted"
    edit = client.patch(url, json={"label": "x"}, headers=world.admin)
    assert edit.status_code == 409
    assert "restore it first" in edit.json()["detail"]
    assert client.post(f"{url}/restore", headers=world.admin).json()["status"] == "inactive"
    assert client.post(f"{url}/activate", headers=world.admin).json()["status"] == "active"


def test_set_default_unsets_the_previous_one(client: TestClient, world: World) -> None:
    first = create_account(client, world.manager_a, "First", world.team_a)["id"]
    second = create_account(client, world.manager_a, "Second", world.team_a)["id"]
    other_team = create_account(client, world.manager_b, "Other", world.team_b)["id"]
    for account_id in (first, other_team):
        r = client.post(
            f"{URL}/{account_id}/set-default",
            params={"direction": "outgoing"},
            headers=world.admin,
        )
        assert r.json()["is_default_outgoing"] is True
    r = client.post(
        f"{URL}/{second}/set-default", params={"direction": "outgoing"}, headers=world.manager_a
    )
    assert r.status_code == 200
    assert r.json()["is_default_outgoing"] is True
    defaults = {
        a["id"]: a["is_default_outgoing"]
        for a in client.get(URL, headers=world.admin).json()["items"]
    }
    assert defaults == {first: False, second: True, other_team: True}
    bad = client.post(
        f"{URL}/{second}/set-default", params={"direction": "sideways"}, headers=world.admin
    )
    assert bad.status_code == 422
    assert "direction" in error_fields(bad)
    client.post(f"{URL}/{first}/deactivate", headers=world.admin)
    inactive = client.post(
        f"{URL}/{first}/set-default", params={"direction": "incoming"}, headers=world.admin
    )
    assert inactive.status_code == 409
    assert "active" in inactive.json()["detail"]


def test_validation_errors_name_the_field(client: TestClient, world: World) -> None:
    body = account_body("Broken", outgoing={"host": "", "port": 70000, "username": "u"})
    body["email"] = "not-an-address"
    r = client.post(URL, json=body, headers=world.admin)
    assert r.status_code == 422
    problem = r.json()
    assert problem["type"].endswith("/invalid-input")
    assert problem["status"] == 422
    fields = error_fields(r)
    assert {"email", "outgoing.host", "outgoing.port"} <= fields.keys()
    assert "after @" in fields["outgoing.host"]
    typed = client.post(URL, json={**account_body("T"), "team_id": "abc"}, headers=world.admin)
    assert typed.status_code == 422
    assert "team_id" in error_fields(typed)
    missing = client.post(URL, json={"email": "a@example.com"}, headers=world.admin)
    assert "name" in error_fields(missing)
    enum = client.post(
        URL, json=account_body("E", outgoing={"security": "tls13"}), headers=world.admin
    )
    assert "outgoing.security" in error_fields(enum)


def test_unknown_fields_are_refused_at_every_level(client: TestClient, world: World) -> None:
    top = client.post(URL, json={**account_body("U"), "colour": "#fff"}, headers=world.admin)
    assert top.status_code == 422
    assert "colour" in error_fields(top)
    nested = account_body("U")
    nested["outgoing"]["pasword"] = "typo"
    r = client.post(URL, json=nested, headers=world.admin)
    assert "outgoing.pasword" in error_fields(r)
    account_id = create_account(client, world.admin, "Known")["id"]
    patch = client.patch(f"{URL}/{account_id}", json={"stauts": "x"}, headers=world.admin)
    assert patch.status_code == 422
    assert "stauts" in error_fields(patch)
    # Server-managed fields are not writable either.
    for field in ("status", "id", "created_by", "is_default_outgoing", "has_password"):
        r = client.patch(f"{URL}/{account_id}", json={field: "x"}, headers=world.admin)
        assert field in error_fields(r)


def test_line_breaks_are_refused_in_header_like_fields(client: TestClient, world: World) -> None:
    cases = {
        "name": {"name": "Evil\r\nBcc: x@example.com"},
        "email": {"email": "a@example.com\nBcc: x@example.com"},
        "display_name": {"display_name": "A\x00B"},
        "label": {"label": "l\n"},
        "outgoing.from_address": {"outgoing": {"host": "h.example.com", "from_address": "a@b.c\r"}},
        "outgoing.reply_to": {"outgoing": {"host": "h.example.com", "reply_to": "a@b.c\n"}},
        "outgoing.helo_name": {"outgoing": {"host": "h.example.com", "helo_name": "x\ry"}},
        "outgoing.username": {"outgoing": {"host": "h.example.com", "username": "u\nRSET"}},
        "outgoing.host": {"outgoing": {"host": "h.example.com\r\nQUIT"}},
        "incoming.host": {"incoming": {"host": "i\n", "username": "u"}},
        "incoming.username": {"incoming": {"host": "i.example.com", "username": "u\r\n"}},
    }
    for field, override in cases.items():
        r = client.post(URL, json={**account_body("CRLF"), **override}, headers=world.admin)
        assert r.status_code == 422, field
        assert "line breaks" in error_fields(r).get(field, ""), (field, r.text)
    account_id = create_account(client, world.admin, "Clean")["id"]
    r = client.patch(f"{URL}/{account_id}", json={"label": "a\rb"}, headers=world.admin)
    assert "label" in error_fields(r)


def test_no_response_or_log_ever_contains_a_secret(
    client: TestClient, world: World, container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    account = create_account(client, world.admin, "Secretive")
    url = f"{URL}/{account['id']}"
    responses = [
        client.get(url, headers=world.admin),
        client.get(URL, headers=world.admin),
        client.patch(url, json={"outgoing": {"password": SECRET + "2"}}, headers=world.admin),
        client.get(f"{url}/audit", headers=world.admin),
        client.get(f"{url}/timeline", headers=world.admin),
        client.get("/api/v1/audit", headers=world.admin),
        client.get("/api/v1/reports/mail-server-masters", headers=world.admin),
        client.get("/api/v1/reports/mail-server-masters.csv", headers=world.admin),
        # A validation error must not echo the password back either.
        client.post(
            URL,
            json=account_body("Bad\n", outgoing={"host": "", "password": SECRET}),
            headers=world.admin,
        ),
    ]
    for r in responses:
        assert SECRET not in r.text, r.request.url
        assert "password_enc" not in r.text
    got = responses[0].json()
    assert "password" not in got["outgoing"]
    assert got["outgoing"]["has_password"] is True
    changes = client.get(f"{url}/audit", headers=world.admin).json()["items"][0]["changes"]
    assert changes["outgoing.password"] == [None, "***"]
    assert SECRET not in caplog.text


def test_fast_mode_carries_a_warning(client: TestClient, world: World) -> None:
    body = account_body("Fast")
    body["outgoing"]["verify_certificate"] = False
    created = client.post(URL, json=body, headers=world.admin).json()
    assert any("fast mode" in w for w in created["warnings"])
    listed = client.get(URL, params={"q": "fast"}, headers=world.admin).json()["items"][0]
    assert listed["warnings"] == created["warnings"]


def test_nothing_is_half_written(client: TestClient, world: World, container: Container) -> None:
    create_account(client, world.admin, "Taken")
    before = _counts(container)
    failing = [
        {**account_body("New"), "colour": "red"},  # schema: unknown field
        account_body("New", outgoing={"host": "", "username": "u"}),  # domain rule
        account_body("New", work_location_ids=[999]),  # reference
        account_body("New", team_id=999),
        account_body("taken"),  # duplicate name (case-insensitive) → 409
        {**account_body("New"), "outgoing": {"host": "h.example.com", "failover_account_id": 999}},
    ]
    for body in failing:
        r = client.post(URL, json=body, headers=world.admin)
        assert r.status_code in (409, 422), r.text
    assert _counts(container) == before


def test_verify_on_save_stores_nothing_when_the_probe_fails(
    client: TestClient, world: World, container: Container
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as s:
        closed_port = s.getsockname()[1]  # closed again when this block ends: connect is refused
    body = {
        "name": "Verified",
        "email": "v@example.com",
        "outgoing": {
            "host": "127.0.0.1",
            "port": closed_port,
            "security": "none",
            "auth_mode": "none",
        },
    }
    before = _counts(container)
    r = client.post(URL, json=body, params={"verify": "true"}, headers=world.admin)
    assert r.status_code == 422, r.text
    assert any(f.startswith("outgoing") for f in error_fields(r))
    assert _counts(container) == before


def test_verify_on_save_accepts_a_working_server(
    client: TestClient, world: World, container: Container
) -> None:
    with SmtpPeer(users={"out-user": SECRET}) as peer:
        body = account_body("Works")
        body["outgoing"].update(host=peer.host, port=peer.port, security="none")
        del body["incoming"]
        r = client.post(URL, json=body, params={"verify": "true"}, headers=world.admin)
        assert r.status_code == 201, r.text
        account_id = r.json()["id"]
        wrong = client.patch(
            f"{URL}/{account_id}",
            json={"outgoing": {"password": "wrong-password"}},
            params={"verify": "true"},
            headers=world.admin,
        )
    assert wrong.status_code == 422
    assert container.accounts.stored_password(account_id, "outgoing") == SECRET


def test_verify_is_refused_where_no_checks_are_wired(
    client: TestClient, world: World, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The checks service is an optional part of the Container (another area wires it in); a
    # deployment without it must refuse ?verify=true instead of saving unverified.
    monkeypatch.delattr(container, "checks")
    before = _counts(container)
    r = client.post(URL, json=account_body("V"), params={"verify": "true"}, headers=world.admin)
    assert r.status_code == 422
    assert error_fields(r) == {"verify": "verification is not available"}
    assert _counts(container) == before


def test_oversized_body_is_413(client: TestClient, world: World, container: Container) -> None:
    before = _counts(container)
    body = account_body("Big", description="x" * (BODY_LIMIT + 1))
    r = client.post(URL, json=body, headers=world.admin)
    assert r.status_code == 413
    assert r.json()["type"].endswith("/too-large")
    assert _counts(container) == before


def test_comments_timeline_and_account_audit(client: TestClient, world: World) -> None:
    url = f"{URL}/{create_account(client, world.manager_a, 'Talk', world.team_a)['id']}"
    r = client.post(f"{url}/comments", json={"body": "called the ISP"}, headers=world.member_a)
    assert r.status_code == 201
    assert r.json()["author"] == "member.a@example.com"
    assert (
        client.post(f"{url}/comments", json={"body": ""}, headers=world.member_a).status_code == 422
    )
    assert [c["body"] for c in client.get(f"{url}/comments", headers=world.member_a).json()] == [
        "called the ISP"
    ]
    client.post(f"{url}/deactivate", headers=world.manager_a)
    kinds = [e["kind"] for e in client.get(f"{url}/timeline", headers=world.member_a).json()]
    assert "comment" in kinds
    assert kinds.count("audit") >= 2
    audit = client.get(f"{url}/audit", headers=world.member_a).json()
    assert [e["action"] for e in audit["items"]][:1] == ["deactivate"]
    assert audit["total"] == 3  # create, comment, deactivate
    limited = client.get(f"{url}/timeline", params={"limit": 1}, headers=world.member_a).json()
    assert len(limited) == 1
    naive = client.get(
        f"{url}/timeline", params={"before": "2020-01-01T00:00:00"}, headers=world.member_a
    )
    assert naive.status_code == 422
    assert "before" in error_fields(naive)


def test_oversized_chunked_body_without_length_is_413(
    client: TestClient, world: World, container: Container
) -> None:
    before = _counts(container)
    chunks = (b" " * 1024 for _ in range(2 * BODY_LIMIT // 1024))  # no Content-Length
    r = client.post(
        URL, content=chunks, headers={**world.admin, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")
    assert _counts(container) == before


def test_concurrent_set_default_leaves_exactly_one(client: TestClient, world: World) -> None:
    ids = [create_account(client, world.admin, f"Race {i}", world.team_a)["id"] for i in range(6)]

    def make_default(account_id: int) -> int:
        r = client.post(
            f"{URL}/{account_id}/set-default", params={"direction": "incoming"}, headers=world.admin
        )
        return r.status_code

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(make_default, ids * 3))
    assert set(statuses) <= {200, 409}  # 409: "another default was set at the same time"
    listed = client.get(URL, params={"team_id": world.team_a}, headers=world.admin).json()
    assert sum(a["is_default_incoming"] for a in listed["items"]) == 1


def test_openapi_documents_the_routes(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert "/api/v1/accounts/{account_id}/set-default" in spec["paths"]
    assert "AccountPublic" in spec["components"]["schemas"]
    outgoing_in = spec["components"]["schemas"]["OutgoingIn"]
    assert outgoing_in["additionalProperties"] is False
