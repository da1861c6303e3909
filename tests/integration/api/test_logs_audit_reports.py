"""The system log, the audit trail and the Mail Server Masters report."""

from __future__ import annotations

import csv
import io

from fastapi.testclient import TestClient

from postroom.wiring import Container

from .conftest import World, create_account, error_fields


def test_logs_filter_page_and_hide_other_teams(
    client: TestClient, world: World, container: Container
) -> None:
    ours = create_account(client, world.manager_a, "Ours", world.team_a)["id"]
    theirs = create_account(client, world.manager_b, "Theirs", world.team_b)["id"]
    transcript = [{"dir": "S", "line": "250 OK"}]
    container.log.write(
        "Outgoing", "info", "sent 1 message", account_id=ours, transcript=transcript
    )
    container.log.write("SMTP Auth", "error", "login refused", account_id=ours, user="anna")
    hidden = container.log.write("Incoming", "warning", "slow server", account_id=theirs)

    everything = client.get("/api/v1/logs", headers=world.admin).json()
    assert everything["total"] == 3
    assert "transcript" not in everything["items"][0]
    assert client.get("/api/v1/logs", headers=world.member_a).json()["total"] == 2
    errors = client.get(
        "/api/v1/logs", params={"level": "error", "user": "anna"}, headers=world.member_a
    ).json()
    assert [e["message"] for e in errors["items"]] == ["login refused"]
    by_source = client.get(
        "/api/v1/logs", params={"source": "Outgoing", "q": "SENT"}, headers=world.admin
    ).json()
    assert by_source["total"] == 1
    assert by_source["items"][0]["has_transcript"] is True
    paged = client.get("/api/v1/logs", params={"limit": 1, "offset": 1}, headers=world.admin).json()
    assert (len(paged["items"]), paged["total"], paged["offset"]) == (1, 3, 1)
    future = client.get(
        "/api/v1/logs", params={"since": "2999-01-01T00:00:00Z"}, headers=world.admin
    )
    assert future.json()["total"] == 0
    detail = client.get(f"/api/v1/logs/{by_source['items'][0]['id']}", headers=world.member_a)
    assert detail.json()["transcript"] == transcript
    assert client.get(f"/api/v1/logs/{hidden}", headers=world.member_a).status_code == 404
    assert client.get(f"/api/v1/logs/{hidden}", headers=world.admin).status_code == 200
    assert "level" in error_fields(
        client.get("/api/v1/logs", params={"level": "loud"}, headers=world.admin)
    )
    assert "limit" in error_fields(
        client.get("/api/v1/logs", params={"limit": 0}, headers=world.admin)
    )
    # A log row with the account id lands in the account's timeline.
    timeline = client.get(f"/api/v1/accounts/{ours}/timeline", headers=world.member_a).json()
    assert {"Outgoing", "SMTP Auth"} <= {e["title"] for e in timeline if e["kind"] == "log"}


def test_audit_is_admin_only_as_a_whole(client: TestClient, world: World) -> None:
    ours = create_account(client, world.manager_a, "Audited", world.team_a)["id"]
    client.post("/api/v1/teams", json={"name": "Audit Team"}, headers=world.admin)
    trail = client.get("/api/v1/audit", headers=world.admin).json()
    assert trail["items"][0]["entity_type"] == "team"
    teams_only = client.get("/api/v1/audit", params={"entity_type": "team"}, headers=world.admin)
    assert {e["entity_type"] for e in teams_only.json()["items"]} == {"team"}
    assert client.get("/api/v1/audit", headers=world.manager_a).status_code == 403
    own = client.get("/api/v1/audit", params={"account_id": ours}, headers=world.member_a).json()
    assert [e["action"] for e in own["items"]] == ["create"]
    assert (
        client.get("/api/v1/audit", params={"account_id": ours}, headers=world.member_b).status_code
        == 404
    )


def test_mail_server_masters_as_json_and_csv(client: TestClient, world: World) -> None:
    create_account(client, world.manager_a, "=Formula", world.team_a)
    gone = create_account(client, world.admin, "Gone")["id"]
    client.post(f"/api/v1/accounts/{gone}/delete", headers=world.admin)

    report = client.get("/api/v1/reports/mail-server-masters", headers=world.admin).json()
    assert [r["name"] for r in report["rows"]] == ["=Formula"]
    row = report["rows"][0]
    assert set(report["columns"]) == set(row)
    assert (row["team"], row["outgoing_port"], row["incoming_host"]) == (
        "Team A",
        587,
        "imap.example.com",
    )
    assert row["created_by"] == "manager.a@example.com"
    with_deleted = client.get(
        "/api/v1/reports/mail-server-masters", params={"include_deleted": True}, headers=world.admin
    ).json()
    assert len(with_deleted["rows"]) == 2

    for url, params in (
        ("/api/v1/reports/mail-server-masters", {"format": "csv"}),
        ("/api/v1/reports/mail-server-masters.csv", {}),
    ):
        r = client.get(url, params=params, headers=world.admin)
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert 'filename="mail-server-masters.csv"' in r.headers["content-disposition"]
        rows = list(csv.DictReader(io.StringIO(r.text)))
        assert [x["name"] for x in rows] == ["'=Formula"]  # spreadsheet formula neutralised
    bad = client.get(
        "/api/v1/reports/mail-server-masters", params={"format": "xls"}, headers=world.admin
    )
    assert "format" in error_fields(bad)
