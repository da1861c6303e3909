"""Per-employee credentials and the account timeline, on both databases."""

from __future__ import annotations

import pytest

from postroom.domain.accounts import AccountDraft, AuthMode, OutgoingDraft
from postroom.domain.people import Actor, Role
from postroom.errors import Conflict, InvalidInput, NotFound
from postroom.wiring import Container

ADMIN = Actor.system()


def test_per_employee_credentials(container: Container) -> None:
    people, accounts = container.people, container.accounts
    team = people.create_team(ADMIN, "Field")
    other_team = people.create_team(ADMIN, "Office")
    account = accounts.create(
        ADMIN,
        AccountDraft(
            name="Field",
            email="field@example.com",
            team_id=team.id,
            outgoing=OutgoingDraft(host="smtp.example.com", auth_mode=AuthMode.PER_EMPLOYEE),
        ),
    )
    alice = people.create_user(
        ADMIN, email="alice@example.com", role=Role.MEMBER, team_ids=[team.id]
    )
    bob = people.create_user(ADMIN, email="bob@example.com", role=Role.MEMBER, team_ids=[team.id])
    eve = people.create_user(
        ADMIN, email="eve@example.com", role=Role.MEMBER, team_ids=[other_team.id]
    )

    stored = people.put_my_credentials(alice.as_actor(), account.id, "alice.smtp", "alice-pw-1")
    assert (stored.user_id, stored.username) == (alice.id, "alice.smtp")
    _, endpoint = accounts.outgoing_endpoint(account.id, sender_user_id=alice.id)
    assert endpoint.username == "alice.smtp"
    assert endpoint.password is not None
    assert endpoint.password.reveal() == "alice-pw-1"

    people.put_my_credentials(alice.as_actor(), account.id, "alice.new", None)  # keeps password
    _, endpoint = accounts.outgoing_endpoint(account.id, sender_user_id=alice.id)
    assert (endpoint.username, endpoint.password.reveal()) == ("alice.new", "alice-pw-1")  # type: ignore[union-attr]

    with pytest.raises(InvalidInput) as missing:
        accounts.outgoing_endpoint(account.id, sender_user_id=bob.id)
    assert "sender has none stored" in missing.value.fields["credentials"]
    with pytest.raises(InvalidInput, match="required for new credentials"):
        people.put_my_credentials(bob.as_actor(), account.id, "bob", None)
    with pytest.raises(NotFound):  # another team's account does not even exist for eve
        people.put_my_credentials(eve.as_actor(), account.id, "eve", "eve-pw-123")

    central = accounts.create(
        ADMIN,
        AccountDraft(
            name="Central",
            email="c@example.com",
            outgoing=OutgoingDraft(host="smtp.example.com", username="c", password="c-pw"),
        ),
    )
    with pytest.raises(Conflict, match="does not use per-employee"):
        people.put_my_credentials(alice.as_actor(), central.id, "alice", "x-pw-12345")
    assert [c.account_id for c in people.my_credentials(alice.as_actor())] == [account.id]
    people.delete_my_credentials(alice.as_actor(), account.id)
    assert people.my_credentials(alice.as_actor()) == []


def test_timeline_merges_audit_comments_and_log(container: Container) -> None:
    account = container.accounts.create(
        ADMIN,
        AccountDraft(
            name="T",
            email="t@example.com",
            outgoing=OutgoingDraft(host="smtp.example.com", auth_mode=AuthMode.NONE),
        ),
    )
    container.audit.add_comment(ADMIN, account.id, "first comment")
    container.log.write("Outgoing", "warning", "451 try later", account_id=account.id, user="bob")
    container.accounts.update(ADMIN, account.id, {"label": "after"})
    container.log.write("Outgoing", "info", "another account's event", account_id=None)

    events = container.audit.timeline(ADMIN, account.id)
    assert events == sorted(events, key=lambda e: e.at, reverse=True)  # newest first
    assert sorted((e.kind, e.title) for e in events) == [
        ("audit", "comment"),
        ("audit", "create"),
        ("audit", "update"),
        ("comment", "comment"),
        ("log", "Outgoing"),
    ]  # the other account's log row is not part of it
    assert (events[0].title, events[-1].title) == ("update", "create")
    log_event = next(e for e in events if e.kind == "log")
    assert (log_event.actor, log_event.detail["message"]) == ("bob", "451 try later")
    assert events[0].detail["changes"] == {"label": ["", "after"]}

    older = container.audit.timeline(ADMIN, account.id, limit=2, before=events[1].at)
    assert len(older) == 2
    assert all(e.at < events[1].at for e in older)
