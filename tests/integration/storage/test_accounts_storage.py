"""Accounts on both databases: CRUD, unique names, lifecycle, soft delete, defaults."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest

from postroom.domain.accounts import (
    AccountDraft,
    AccountQuery,
    AccountStatus,
    AuthMode,
    IncomingDraft,
    IncomingProtocol,
    OutgoingDraft,
    Security,
)
from postroom.domain.people import Actor
from postroom.errors import Conflict, InvalidInput, NotFound
from postroom.wiring import Container

ADMIN = Actor.system()


def draft(name: str, team_id: int | None = None, **outgoing: object) -> AccountDraft:
    return AccountDraft(
        name=name,
        email=f"{name.strip().lower().replace(' ', '-')}@example.com",
        team_id=team_id,
        outgoing=OutgoingDraft(
            **{"host": "smtp.example.com", "auth_mode": AuthMode.NONE, **outgoing}
        ),  # type: ignore[arg-type]
    )


def test_crud(container: Container) -> None:
    accounts = container.accounts
    created = accounts.create(
        ADMIN,
        replace(
            draft("Main", username="main", password="pw-1", auth_mode=AuthMode.CENTRAL),
            incoming=IncomingDraft(
                protocol=IncomingProtocol.POP3, host="pop.example.com", username="main",
                security=Security.SSL, password="pw-2",
            ),
        ),
    )  # fmt: skip
    assert created.status is AccountStatus.ACTIVE
    assert created.outgoing is not None
    assert created.outgoing.port == 587
    assert created.outgoing.has_password
    assert created.incoming is not None
    assert created.incoming.port == 995
    assert accounts.get(ADMIN, created.id) == created
    assert created.created_by == "system"

    updated = accounts.update(ADMIN, created.id, {"outgoing": {"port": 2525}, "label": "L"})
    assert updated.outgoing is not None
    assert (updated.outgoing.host, updated.outgoing.port) == ("smtp.example.com", 2525)
    assert updated.label == "L"
    assert accounts.stored_password(created.id, "outgoing") == "pw-1"  # blank keeps it
    changed = accounts.update(ADMIN, created.id, {"outgoing": {"password": "pw-3"}})
    assert changed.updated_at is not None
    assert accounts.stored_password(created.id, "outgoing") == "pw-3"
    without_incoming = accounts.update(ADMIN, created.id, {"incoming": None})
    assert without_incoming.incoming is None

    for i in range(5):
        accounts.create(ADMIN, draft(f"Extra {i}"))
    page = accounts.list(ADMIN, AccountQuery(search="extra", limit=2, offset=2))
    assert page.total == 5
    assert [a.name for a in page.items] == ["Extra 2", "Extra 3"]
    with pytest.raises(InvalidInput) as bad:
        accounts.update(ADMIN, created.id, {"outgoing": {"port": 0}, "colour": "red"})
    assert bad.value.fields == {"colour": "is not a known field"}
    with pytest.raises(NotFound):
        accounts.get(ADMIN, 10_000)


def test_names_are_unique_ignoring_case(container: Container) -> None:
    accounts = container.accounts
    first = accounts.create(ADMIN, draft("Sales"))
    with pytest.raises(Conflict, match="already exists"):
        accounts.create(ADMIN, draft(" sALES "))
    other = accounts.create(ADMIN, draft("Support"))
    with pytest.raises(Conflict):
        accounts.update(ADMIN, other.id, {"name": "SALES"})
    assert accounts.find(ADMIN, "sales").id == first.id
    assert accounts.list(ADMIN, AccountQuery()).total == 2


def test_lifecycle_and_soft_delete_keep_history(container: Container) -> None:
    accounts = container.accounts
    account = accounts.create(ADMIN, draft("Old"))
    container.audit.add_comment(ADMIN, account.id, "moving to the new server")
    container.log.write("Outgoing", "info", "sent 3 messages", account_id=account.id)
    assert accounts.transition(ADMIN, account.id, "deactivate").status is AccountStatus.INACTIVE
    with pytest.raises(Conflict, match="cannot deactivate an account that is inactive"):
        accounts.transition(ADMIN, account.id, "deactivate")
    deleted = accounts.transition(ADMIN, account.id, "delete")
    assert deleted.status is AccountStatus.DELETED
    with pytest.raises(Conflict, match="restore it first"):
        accounts.update(ADMIN, account.id, {"label": "x"})
    with pytest.raises(Conflict):  # a deleted account keeps its name: nothing freed silently
        accounts.create(ADMIN, draft("old"))
    assert accounts.list(ADMIN, AccountQuery()).total == 0
    assert [
        a.id for a in accounts.list(ADMIN, AccountQuery(status=AccountStatus.DELETED)).items
    ] == [account.id]

    kinds = [e.kind for e in container.audit.timeline(ADMIN, account.id)]
    assert kinds.count("audit") == 4  # create, comment, deactivate, delete
    assert "comment" in kinds
    assert "log" in kinds
    assert container.audit.comments(ADMIN, account.id)[0].body == "moving to the new server"
    restored = accounts.transition(ADMIN, account.id, "restore")
    assert restored.status is AccountStatus.INACTIVE  # nothing starts sending by surprise


def test_defaults_per_team_and_system_wide(container: Container) -> None:
    accounts = container.accounts
    team_a = container.people.create_team(ADMIN, "A")
    team_b = container.people.create_team(ADMIN, "B")
    a1 = accounts.create(ADMIN, draft("a1", team_a.id))
    a2 = accounts.create(ADMIN, draft("a2", team_a.id))
    b1 = accounts.create(ADMIN, draft("b1", team_b.id))
    s1 = accounts.create(ADMIN, draft("s1"))
    for account in (a1, b1, s1):
        accounts.set_default(ADMIN, account.id, "outgoing")
    accounts.set_default(ADMIN, a2.id, "outgoing")  # replaces a1, leaves b1 and s1 alone

    def default(team_id: int | None) -> int | None:
        found = accounts.default_for("outgoing", team_id)
        return None if found is None else found.id

    assert (default(team_a.id), default(team_b.id), default(None)) == (a2.id, b1.id, s1.id)
    assert not accounts.get(ADMIN, a1.id).is_default_outgoing
    assert "unset-default-outgoing" in [e.title for e in container.audit.timeline(ADMIN, a1.id)]
    with pytest.raises(Conflict, match="no incoming server"):
        accounts.set_default(ADMIN, a2.id, "incoming")

    accounts.transition(ADMIN, a2.id, "deactivate")  # only active accounts are defaults
    assert default(team_a.id) is None
    with pytest.raises(Conflict, match="only an active account"):
        accounts.set_default(ADMIN, a2.id, "outgoing")
    with pytest.raises(Conflict, match="cannot change team"):
        accounts.update(ADMIN, b1.id, {"team_id": team_a.id})


def test_concurrent_set_default_leaves_exactly_one(container: Container) -> None:
    accounts = container.accounts
    team = container.people.create_team(ADMIN, "Race")
    ids = [accounts.create(ADMIN, draft(f"r{i}", team.id)).id for i in range(8)]

    def claim(account_id: int, barrier: threading.Barrier, outcomes: list[object]) -> None:
        barrier.wait()  # all threads call set_default at once
        try:
            outcomes.append(accounts.set_default(ADMIN, account_id, "outgoing").id)
        except Conflict as exc:  # the loser of a race is told to retry, never left half-set
            outcomes.append(exc)

    for _ in range(3):
        barrier = threading.Barrier(len(ids))
        outcomes: list[object] = []
        threads = [threading.Thread(target=claim, args=(i, barrier, outcomes)) for i in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(outcomes) == len(ids)
        assert any(isinstance(o, int) for o in outcomes)
        page = accounts.list(ADMIN, AccountQuery(team_id=team.id, limit=100))
        defaults = [a.id for a in page.items if a.is_default_outgoing]
        assert len(defaults) == 1
        assert accounts.default_for("outgoing", team.id).id == defaults[0]  # type: ignore[union-attr]
