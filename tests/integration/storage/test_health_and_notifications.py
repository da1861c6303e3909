"""Switching fetching back on starts its health afresh; notifications respect account access."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from postroom.domain.accounts import AccountDraft, IncomingDraft
from postroom.domain.people import Actor, Role
from postroom.errors import NotFound
from postroom.storage.tables.core import account_incoming
from postroom.wiring import Container


def _incoming_account(container: Container, name: str, team_id: int | None = None) -> int:
    draft = AccountDraft(
        name=name,
        email=f"{name}@example.com",
        team_id=team_id,
        incoming=IncomingDraft(host="imap.example.com", username="u", password="pw-123456"),
    )
    return container.accounts.create(Actor.system(), draft).id


def test_reenabling_fetching_resets_failure_counters(container: Container) -> None:
    account_id = _incoming_account(container, "inbound")
    with container.engine.begin() as conn:  # as the fetcher leaves it after auto-disable
        conn.execute(
            account_incoming.update()
            .where(account_incoming.c.account_id == account_id)
            .values(enabled=False, consecutive_failures=7, consecutive_auth_failures=5)
        )
    container.accounts.update(Actor.system(), account_id, {"incoming": {"enabled": True}})
    with container.engine.begin() as conn:
        row = conn.execute(
            sa.select(account_incoming).where(account_incoming.c.account_id == account_id)
        ).one()
    assert row.enabled
    assert (row.consecutive_failures, row.consecutive_auth_failures) == (0, 0)
    assert row.fetch_failing_since is None
    assert container.accounts.stored_password(account_id, "incoming") == "pw-123456"


def test_a_member_cannot_mark_another_teams_notification_read(container: Container) -> None:
    system = Actor.system()
    team_a = container.people.create_team(system, "A")
    team_b = container.people.create_team(system, "B")
    other = _incoming_account(container, "b-account", team_b.id)
    container.log.notify("error", "fetching switched off", account_id=other)
    member = container.people.create_user(
        system, email="m@example.com", role=Role.MEMBER, team_ids=[team_a.id]
    ).as_actor()
    (note,) = container.log.notifications(system)
    assert container.log.notifications(member) == []
    with pytest.raises(NotFound):
        container.log.mark_read(member, note.id)
    assert container.log.notifications(system, unread_only=True) == [note]
    container.log.mark_read(system, note.id)
    assert container.log.notifications(system, unread_only=True) == []
