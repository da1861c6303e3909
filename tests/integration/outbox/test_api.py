"""The REST surface: submit, idempotency header, journals, detail, cancel, routing explain,
pause/resume, and team isolation."""

from __future__ import annotations

from fastapi.testclient import TestClient

from postroom.api.app import create_app
from postroom.domain.people import Role
from postroom.wiring import Container
from tests.integration.outbox.conftest import SYSTEM, drain, make_account
from tests.integration.outbox.smtp_peer import ScriptedSmtp


def client_for(
    container: Container,
    role: Role = Role.ADMIN,
    teams: list[int] | None = None,
    email: str = "admin@x.example",
) -> TestClient:
    user = container.people.create_user(SYSTEM, email=email, role=role, team_ids=teams or [])
    token = container.people.create_token(SYSTEM, user.id, "t")
    return TestClient(create_app(container), headers={"Authorization": f"Bearer {token}"})


def test_submit_list_show_cancel_and_explain(container: Container) -> None:
    with ScriptedSmtp() as peer:
        account_id = make_account(container, peer.port)
        container.accounts.set_default(SYSTEM, account_id, "outgoing")
        api = client_for(container)
        body = {"to": ["a@dest.example"], "subject": "Hi", "text": "Body"}
        created = api.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "k1"})
        assert created.status_code == 202, created.text
        message = created.json()["message"]
        assert message["account_id"] == account_id  # routed to the system default
        again = api.post("/api/v1/messages", json=body, headers={"Idempotency-Key": "k1"})
        assert again.status_code == 200
        assert again.json()["created"] is False
        assert again.json()["message"]["id"] == message["id"]

        later = api.post("/api/v1/messages", json={**body, "send_after": "2999-01-01T00:00:00Z"})
        cancelled = api.post(f"/api/v1/messages/{later.json()['message']['id']}/cancel")
        assert cancelled.json()["status"] == "cancelled"

        drain(container)
        sent = api.get("/api/v1/messages", params={"status": "sent"}).json()
        assert [m["id"] for m in sent["items"]] == [message["id"]]
        assert api.post(f"/api/v1/messages/{message['id']}/cancel").status_code == 409
        detail = api.get(f"/api/v1/messages/{message['id']}").json()
        assert detail["recipients"][0]["address"] == "a@dest.example"
        raw = api.get(f"/api/v1/messages/{message['id']}/raw")
        assert raw.headers["content-type"].startswith("message/rfc822")
        assert message["message_id"].encode() in raw.content

        explained = api.post("/api/v1/routing/explain", json={}).json()
        assert explained["account_id"] == account_id
        assert [s["rule"] for s in explained["steps"]][-1] == "system_default"

        assert api.post(f"/api/v1/accounts/{account_id}/pause").json()["paused"] is True
        assert api.post(f"/api/v1/accounts/{account_id}/resume").json()["paused"] is False


def test_header_injection_is_a_422_naming_the_field(container: Container) -> None:
    make_account(container, 25)
    api = client_for(container)
    response = api.post(
        "/api/v1/messages",
        json={
            "to": ["a@dest.example"],
            "subject": "x\r\nBcc: victim@x.example",
            "text": "t",
            "account_id": 1,
        },
    )
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    assert {e["field"] for e in response.json()["errors"]} == {"subject"}
    unknown = api.post("/api/v1/messages", json={"to": ["a@x.example"], "text": "t", "bogus": 1})
    assert unknown.status_code == 422


def test_members_do_not_see_other_teams_mail(container: Container) -> None:
    team_a = container.people.create_team(SYSTEM, "A")
    team_b = container.people.create_team(SYSTEM, "B")
    from postroom.domain.accounts import AccountDraft, AuthMode, OutgoingDraft, Security

    def team_account(name: str, team_id: int) -> int:
        return container.accounts.create(
            SYSTEM,
            AccountDraft(
                name=name,
                email=f"{name}@x.example",
                team_id=team_id,
                outgoing=OutgoingDraft(
                    host="127.0.0.1", port=25, security=Security.NONE, auth_mode=AuthMode.NONE
                ),
            ),
        ).id

    b_account = team_account("b", team_b.id)
    team_account("a", team_a.id)
    bob = client_for(container, Role.MEMBER, [team_b.id], "bob@x.example")
    sent = bob.post(
        "/api/v1/messages", json={"to": ["z@x.example"], "text": "t", "account_id": b_account}
    )
    assert sent.status_code == 202, sent.text
    alice = client_for(container, Role.MEMBER, [team_a.id], "alice@x.example")
    message_id = sent.json()["message"]["id"]
    assert alice.get(f"/api/v1/messages/{message_id}").status_code == 404
    assert alice.get("/api/v1/messages").json()["total"] == 0
    assert alice.post(f"/api/v1/messages/{message_id}/cancel").status_code == 404
    refused = alice.post(
        "/api/v1/messages", json={"to": ["z@x.example"], "text": "t", "account_id": b_account}
    )
    assert refused.status_code == 422
    assert alice.post(f"/api/v1/accounts/{b_account}/pause").status_code == 404
    assert bob.post(f"/api/v1/accounts/{b_account}/pause").status_code == 403
