"""The Mail Server Masters report on both databases: one row per visible account, safe CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime

from postroom.domain.accounts import (
    AccountDraft,
    AuthMode,
    IncomingDraft,
    IncomingProtocol,
    OutgoingDraft,
    Transport,
)
from postroom.domain.people import Actor, Role
from postroom.services.reports import MASTERS_COLUMNS, ReportService
from postroom.wiring import Container

ADMIN = Actor.system()


def test_rows_visibility_health_and_deleted(container: Container) -> None:
    sales = container.people.create_team(ADMIN, "Sales")
    support = container.people.create_team(ADMIN, "Support")
    mine = container.accounts.create(
        ADMIN,
        AccountDraft(
            name="Sales",
            email="sales@example.com",
            team_id=sales.id,
            incoming=IncomingDraft(
                protocol=IncomingProtocol.POP3, host="pop.example.com", username="s"
            ),
        ),
    )
    container.accounts.create(
        ADMIN,
        AccountDraft(
            name="Support",
            email="support@example.com",
            team_id=support.id,
            outgoing=OutgoingDraft(transport=Transport.SENDMAIL, auth_mode=AuthMode.NONE),
        ),
    )
    system = container.accounts.create(
        ADMIN,
        AccountDraft(
            name="Noreply",
            email="noreply@example.com",
            outgoing=OutgoingDraft(host="smtp.example.com", auth_mode=AuthMode.NONE),
        ),
    )
    container.accounts.set_default(ADMIN, system.id, "outgoing")
    checked = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    container.accounts.record_check(system.id, ok=True, error="", at=checked)

    rows = container.reports.mail_server_masters(ADMIN)
    assert [r["name"] for r in rows] == ["Noreply", "Sales", "Support"]
    assert all(tuple(r) == MASTERS_COLUMNS for r in rows)
    noreply = rows[0]
    assert (noreply["team"], noreply["default_outgoing"], noreply["default_incoming"]) == (
        None,
        True,
        False,
    )
    assert noreply["last_ok_at"] == checked
    assert (rows[1]["incoming_protocol"], rows[1]["incoming_port"]) == ("pop3", 995)
    assert rows[1]["outgoing_transport"] is None
    assert rows[2]["outgoing_transport"] == "sendmail"

    member = Actor(None, "m@example.com", Role.MEMBER, frozenset({sales.id}))
    assert [r["name"] for r in container.reports.mail_server_masters(member)] == [
        "Noreply",
        "Sales",
    ]
    container.accounts.transition(ADMIN, mine.id, "delete")
    assert "Sales" not in [r["name"] for r in container.reports.mail_server_masters(ADMIN)]
    everything = container.reports.mail_server_masters(ADMIN, include_deleted=True)
    assert [r["status"] for r in everything if r["name"] == "Sales"] == ["deleted"]


def test_csv_neutralises_formulas() -> None:
    hostile = ["=1+1", "+SUM(A1)", "-2+3", "@cmd", "\tx", "plain", "a=b"]
    rows = [{"name": value, "outgoing_port": 25, "default_outgoing": True} for value in hostile]
    text = ReportService.to_csv(rows, ("name", "outgoing_port", "default_outgoing"))
    assert text.startswith("name,outgoing_port,default_outgoing\r\n")
    parsed = list(csv.reader(io.StringIO(text)))[1:]
    assert [r[0] for r in parsed] == [
        "'=1+1",
        "'+SUM(A1)",
        "'-2+3",
        "'@cmd",
        "'\tx",
        "plain",
        "a=b",
    ]
    assert parsed[0][1:] == ["25", "true"]
