"""The checks routes through TestClient: saved account, unsaved values, test e-mail, history,
bulk job, access, and no secret in any response."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from postroom.api.app import create_app
from postroom.domain.accounts import Security
from postroom.domain.people import Actor, Role
from postroom.testing.peers import Script, ScriptedPeer, Silence, SmtpPeer
from postroom.testing.tls import LocalCA
from postroom.wiring import Container

from .conftest import PASSWORD, USER, MakeAccount, MakeContainer, smtp_draft

SYSTEM = Actor.system()


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    with TestClient(create_app(container)) as c:
        yield c


def _headers(container: Container, email: str, role: Role, teams: list[int]) -> dict[str, str]:
    user = container.people.create_user(SYSTEM, email=email, role=role, team_ids=teams)
    return {"Authorization": f"Bearer {container.people.create_token(SYSTEM, user.id, 't')}"}


@pytest.fixture
def admin(container: Container) -> dict[str, str]:
    return _headers(container, "admin@example.test", Role.ADMIN, [])


def _form(port: int, *, password: str | None = PASSWORD, **extra: Any) -> dict[str, Any]:
    outgoing: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": "starttls",
        "username": USER,
        "timeout_s": 3,
    }
    if password is not None:
        outgoing["password"] = password
    return {"outgoing": outgoing, **extra}


def test_saved_account_check_history_and_test_email(
    client: TestClient,
    container: Container,
    make_account: MakeAccount,
    admin: dict[str, str],
    ca: LocalCA,
) -> None:
    with SmtpPeer(mode="starttls", cert=ca.server_cert(), users={USER: PASSWORD}) as peer:
        account = make_account(smtp_draft(peer.host, peer.port, Security.STARTTLS, debug=True))
        url = f"/api/v1/accounts/{account.id}"
        checked = client.post(f"{url}/checks", json={"protocols": ["smtp"]}, headers=admin)
        mail = client.post(f"{url}/test-email", json={"to": "x@example.test"}, headers=admin)
        history = client.get(f"{url}/checks", params={"limit": 10}, headers=admin)
        logs = client.get("/api/v1/logs", params={"account_id": account.id}, headers=admin)
        assert len(peer.messages) == 1
    assert checked.status_code == 200, checked.text
    body = checked.json()
    assert body["ok"] is True
    assert body["results"][0]["tls"]["version"].startswith("TLS")
    assert any(line["direction"] == "server" for line in body["results"][0]["transcript"])
    assert mail.status_code == 200
    assert mail.json()["ok"] is True
    assert [i["protocol"] for i in history.json()["items"]] == ["smtp", "smtp"]
    for response in (checked, mail, history, logs):
        assert PASSWORD not in response.text
    assert (
        client.post(f"{url}/checks", json={"protocols": ["imap"]}, headers=admin).json()["errors"][
            0
        ]["field"]
        == "protocols"
    )


def test_unsaved_values_blank_password_and_failure_detail(
    client: TestClient, make_account: MakeAccount, admin: dict[str, str], ca: LocalCA
) -> None:
    with SmtpPeer(mode="starttls", cert=ca.server_cert(), users={USER: PASSWORD}) as peer:
        account = make_account(smtp_draft(peer.host, peer.port, Security.STARTTLS))
        stored = client.post(
            "/api/v1/checks",
            json=_form(peer.port, password=None, account_id=account.id),
            headers=admin,
        )
        wrong = client.post("/api/v1/checks", json=_form(peer.port, password="nope"), headers=admin)
    assert stored.status_code == 200, stored.text
    assert stored.json()["ok"] is True
    [result] = wrong.json()["results"]
    assert (result["error_class"], result["field"]) == ("auth_failed", "password")
    assert result["hint"]
    assert PASSWORD not in stored.text + wrong.text
    bad = client.post("/api/v1/checks", json=_form(25, surprise=1), headers=admin)
    assert bad.status_code == 422


def test_access_rules(
    client: TestClient, container: Container, make_account: MakeAccount, admin: dict[str, str]
) -> None:
    team_a = container.people.create_team(SYSTEM, "A").id
    team_b = container.people.create_team(SYSTEM, "B").id
    member_a = _headers(container, "m.a@example.test", Role.MEMBER, [team_a])
    manager_b = _headers(container, "g.b@example.test", Role.MANAGER, [team_b])
    account = make_account(smtp_draft("127.0.0.1", 9, Security.NONE, team_id=team_a))
    url = f"/api/v1/accounts/{account.id}"
    assert client.get(f"{url}/checks", headers=manager_b).status_code == 404
    assert client.post(f"{url}/checks", json={}, headers=manager_b).status_code == 404
    assert client.post(f"{url}/test-email", json={}, headers=manager_b).status_code == 404
    assert client.get(f"{url}/checks", headers=member_a).status_code == 200
    # Testing form values with the stored password needs the right to change the account.
    form = _form(9, password=None, account_id=account.id)
    assert client.post("/api/v1/checks", json=form, headers=member_a).status_code == 403
    assert client.post("/api/v1/checks", json=_form(9), headers=member_a).status_code == 403
    for path in (f"{url}/checks", "/api/v1/checks", "/api/v1/checks/jobs"):
        assert client.post(path, json={}).status_code == 401


def test_bulk_job_reports_progress_and_results(make_container: MakeContainer) -> None:
    container = make_container(check_deadline_s=1.0)
    headers = _headers(container, "boss@example.test", Role.ADMIN, [])
    other = _headers(container, "other@example.test", Role.MANAGER, [])
    with (
        TestClient(create_app(container)) as client,
        SmtpPeer(users={USER: PASSWORD}) as good,
        ScriptedPeer(Script(greeting=Silence())) as hole,
    ):
        for i, peer in enumerate((good, hole, good)):
            container.accounts.create(
                SYSTEM, smtp_draft(peer.host, peer.port, Security.NONE, name=f"B{i}")
            )
        started = client.post("/api/v1/checks/jobs", headers=headers)
        assert started.status_code == 202
        url = started.json()["status_url"]
        for _ in range(200):  # waiting for the background job, not timing it
            job = client.get(url, headers=headers).json()
            if job["status"] != "running":
                break
            time.sleep(0.05)
        assert client.get(url, headers=other).status_code == 404
    assert job["status"] == "done"
    assert (job["total"], job["done"], job["ok_count"], job["failed_count"]) == (3, 3, 2, 1)
    failed = next(a for a in job["results"] if not a["ok"])
    assert failed["account_name"] == "B1"
    assert failed["results"][0]["error_class"] == "timeout"
    assert PASSWORD not in str(job)
