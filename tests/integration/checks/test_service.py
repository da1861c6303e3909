"""CheckService against in-process peers: aiosmtpd (plain, STARTTLS, implicit TLS, AUTH) and
scripted line servers (black hole). Every check is proved by what it leaves behind: history,
system log, health — and the absence of the password everywhere."""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from postroom.domain.accounts import AccountDraft, AuthMode, OutgoingDraft, Security, Transport
from postroom.domain.checks import ErrorClass, Field, StepOutcome
from postroom.domain.people import Actor, Role
from postroom.errors import Forbidden, InvalidInput, NotFound
from postroom.storage.audit import LogFilter
from postroom.storage.tables.core import accounts, checks, system_log
from postroom.testing.peers import Script, ScriptedPeer, Silence, SmtpPeer
from postroom.testing.tls import LocalCA
from postroom.wiring import Container

from .conftest import PASSWORD, USER, MakeAccount, MakeContainer, smtp_draft

SYSTEM = Actor.system()
MODES = [("plain", Security.NONE), ("starttls", Security.STARTTLS), ("ssl", Security.SSL)]


def _rows(container: Container, table: sa.Table) -> list[dict[str, Any]]:
    with container.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table))]


def _dump(value: Any) -> str:
    return json.dumps(value, default=str)


@pytest.mark.parametrize(("mode", "security"), MODES)
def test_saved_account_passes_on_each_security_mode(
    container: Container, make_account: MakeAccount, ca: LocalCA, mode: str, security: Security
) -> None:
    with SmtpPeer(mode=mode, cert=ca.server_cert(), users={USER: PASSWORD}) as peer:
        account = make_account(smtp_draft(peer.host, peer.port, security))
        [result] = container.checks.check_account(SYSTEM, account.id)
        assert peer.messages == []  # the probe stops at 354: nothing is delivered
    assert result.ok, result
    steps = {s.name: s.outcome for s in result.steps}
    assert steps["auth"] is StepOutcome.OK
    assert steps["data"] is StepOutcome.OK
    assert (result.tls is not None) == (security is not Security.NONE)
    [record] = container.checks.history(SYSTEM, account.id)
    assert record.ok
    assert record.protocol == "smtp"
    assert record.result["steps"]
    [entry] = container.log.query(SYSTEM, LogFilter(account_id=account.id)).items
    assert (entry.source, entry.level) == ("SMTP Auth", "info")
    assert "succeeded" in entry.message
    assert entry.transcript is None
    health = container.accounts.health(account.id)
    assert health["last_ok_at"] == health["last_check_at"]
    assert health["failing_since"] is None


def test_wrong_password_is_auth_failed_at_password_and_marks_health(
    container: Container, make_account: MakeAccount, ca: LocalCA
) -> None:
    with SmtpPeer(mode="starttls", cert=ca.server_cert(), users={USER: "the-real-one"}) as peer:
        account = make_account(smtp_draft(peer.host, peer.port, Security.STARTTLS))
        [first] = container.checks.check_account(SYSTEM, account.id, {"smtp"})
        [second] = container.checks.check_account(SYSTEM, account.id, {"smtp"})
    for result in (first, second):
        assert not result.ok
        assert (result.error_class, result.field) == (ErrorClass.AUTH_FAILED, Field.PASSWORD)
    health = container.accounts.health(account.id)
    assert health["last_ok_at"] is None
    assert health["failing_since"] is not None
    assert health["failing_since"] < health["last_check_at"]  # failing since the first one
    assert "smtp:" in health["last_error"]
    entries = container.log.query(SYSTEM, LogFilter(account_id=account.id)).items
    assert {e.level for e in entries} == {"error"}
    assert all("'auth'" in e.message and "check the user name" in e.message for e in entries)


def test_validate_on_save_refuses_and_stores_nothing(container: Container, ca: LocalCA) -> None:
    with SmtpPeer(mode="starttls", cert=ca.server_cert(), users={USER: "the-real-one"}) as peer:
        draft = smtp_draft(peer.host, peer.port, Security.STARTTLS)
        with pytest.raises(InvalidInput) as refused:
            container.accounts.create(SYSTEM, draft, verify=container.checks.verify_draft)
        good = smtp_draft(peer.host, peer.port, Security.STARTTLS, password="the-real-one")
        saved = container.accounts.create(SYSTEM, good, verify=container.checks.verify_draft)
    assert list(refused.value.fields) == ["outgoing.password"]
    message = refused.value.fields["outgoing.password"]
    assert "'auth'" in message
    assert "check the user name and password" in message
    assert [a["id"] for a in _rows(container, accounts)] == [saved.id]
    # The verifications ran before there was an account: history rows without one.
    assert [(r["account_id"], r["ok"]) for r in _rows(container, checks)] == [
        (None, False),
        (None, True),
    ]


def test_update_with_verify_keeps_everything_on_failure(
    container: Container, make_account: MakeAccount, ca: LocalCA
) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    with SmtpPeer(mode="ssl", cert=ca.server_cert(), users={USER: PASSWORD}) as peer:
        account = make_account(smtp_draft(peer.host, peer.port, Security.SSL))
        # A blank password on update keeps (and verifies with) the stored one.
        container.accounts.update(
            SYSTEM, account.id, {"label": "ok"}, verify=container.checks.verify_draft
        )
        with pytest.raises(InvalidInput) as refused:
            container.accounts.update(
                SYSTEM,
                account.id,
                {"outgoing": {"port": closed_port, "password": "new-password-1"}},
                verify=container.checks.verify_draft,
            )
    assert list(refused.value.fields) == ["outgoing.port"]
    assert "'connect'" in refused.value.fields["outgoing.port"]
    saved = container.accounts.get(SYSTEM, account.id)
    assert saved.label == "ok"
    assert saved.outgoing is not None
    assert saved.outgoing.port == peer.port
    assert container.accounts.stored_password(account.id, "outgoing") == PASSWORD


def test_unsaved_values_with_blank_password_use_the_stored_one(
    container: Container, make_account: MakeAccount, ca: LocalCA
) -> None:
    with SmtpPeer(mode="starttls", cert=ca.server_cert(), users={USER: PASSWORD}) as peer:
        account = make_account(smtp_draft(peer.host, peer.port, Security.STARTTLS))
        form = smtp_draft(peer.host, peer.port, Security.STARTTLS, password=None, name="")
        [with_stored] = container.checks.check_values(SYSTEM, form, account.id)
        [without] = container.checks.check_values(SYSTEM, form)
    assert with_stored.ok, with_stored
    assert (without.error_class, without.field) == (ErrorClass.AUTH_FAILED, Field.PASSWORD)
    # Unsaved values leave history and a log entry, but not the saved account's health.
    assert len(container.checks.history(SYSTEM, account.id)) == 1
    assert container.accounts.health(account.id)["last_check_at"] is None


def test_unsaved_values_are_validated_and_need_manage_rights(
    container: Container, make_account: MakeAccount
) -> None:
    with pytest.raises(InvalidInput) as bad:
        container.checks.check_values(SYSTEM, smtp_draft("bad host", 25, Security.NONE))
    assert "outgoing.host" in bad.value.fields
    with pytest.raises(InvalidInput) as missing:
        container.checks.check_values(
            SYSTEM, smtp_draft("127.0.0.1", 25, Security.NONE), protocols={"imap"}
        )
    assert "protocols" in missing.value.fields
    team = container.people.create_team(SYSTEM, "A").id
    member = Actor(99, "member@example.test", Role.MEMBER, frozenset({team}))
    account = make_account(smtp_draft("127.0.0.1", 25, Security.NONE, team_id=team))
    with pytest.raises(Forbidden):  # a member must not aim the stored password anywhere
        container.checks.check_values(
            member, smtp_draft("127.0.0.1", 26, Security.NONE), account.id
        )
    outsider = Actor(98, "other@example.test", Role.MANAGER, frozenset())
    with pytest.raises(NotFound):
        container.checks.check_account(outsider, account.id)


def test_ssrf_guard_refuses_loopback_clearly(make_container: MakeContainer) -> None:
    container = make_container(allowed_networks="192.0.2.0/24")  # loopback not allowed
    with ScriptedPeer(Script()) as peer:
        draft = smtp_draft(peer.host, peer.port, Security.NONE)
        account = container.accounts.create(SYSTEM, draft)
        [result] = container.checks.check_account(SYSTEM, account.id)
        assert peer.connections == 0
    assert (result.error_class, result.field) == (ErrorClass.DESTINATION_REFUSED, Field.HOST)
    assert "not allowed" in result.error_message
    assert [s.name for s in result.steps if s.outcome is StepOutcome.FAILED] == ["connect"]


def test_bulk_with_black_holed_peers_ends_each_probe_within_its_deadline(
    make_container: MakeContainer,
) -> None:
    container = make_container(check_deadline_s=1.0)
    with SmtpPeer(users={USER: PASSWORD}) as good, ScriptedPeer(Script(greeting=Silence())) as hole:
        for i in range(6):
            peer = hole if i % 3 == 0 else good
            container.accounts.create(
                SYSTEM, smtp_draft(peer.host, peer.port, Security.NONE, name=f"A{i}")
            )
        container.accounts.create(SYSTEM, AccountDraft(name="empty", email="e@example.test"))
        seen: list[tuple[int, int]] = []
        outcome = container.checks.check_all(SYSTEM, 4, lambda d, t: seen.append((d, t)))
    assert [a.name for a, _ in outcome] == ["A0", "A1", "A2", "A3", "A4", "A5", "empty"]
    assert sorted(seen)[-1] == (7, 7)
    assert len(seen) == 7
    for account, results in outcome[:6]:
        [result] = results
        elapsed = sum(s.elapsed_ms for s in result.steps)
        if account.name in ("A0", "A3"):
            assert result.error_class is ErrorClass.TIMEOUT
            assert elapsed < 1900  # bounded by the 1 s deadline, not the 3 s read timeout
        else:
            assert result.ok, result
    assert outcome[6][1] == []
    assert len(_rows(container, checks)) == 6


def test_debug_flag_keeps_the_transcript_and_no_secret_is_stored(
    container: Container, make_account: MakeAccount, ca: LocalCA
) -> None:
    with SmtpPeer(mode="starttls", cert=ca.server_cert(), users={USER: PASSWORD}) as peer:
        debug = make_account(smtp_draft(peer.host, peer.port, Security.STARTTLS, debug=True))
        quiet = make_account(smtp_draft(peer.host, peer.port, Security.STARTTLS, name="Quiet"))
        for account in (debug, quiet):
            container.checks.check_account(SYSTEM, account.id)
        container.checks.send_test_email(SYSTEM, debug.id, "someone@example.test")
        assert len(peer.messages) == 1
    logs = {r["account_id"]: r for r in _rows(container, system_log) if r["action"] == "check"}
    transcript = logs[debug.id]["transcript"]
    assert transcript
    assert any("AUTH" in line["text"] for line in transcript)
    assert logs[quiet.id]["transcript"] is None
    stored = _dump(_rows(container, checks)) + _dump(_rows(container, system_log))
    assert PASSWORD not in stored
    assert "AUTH PLAIN" in stored  # the command is kept, its payload redacted


def test_test_email_goes_to_the_company_address_by_default(
    make_container: MakeContainer,
) -> None:
    container = make_container(company_email="office@example.test")
    with SmtpPeer(users={USER: PASSWORD}) as peer:
        account = container.accounts.create(SYSTEM, smtp_draft(peer.host, peer.port, Security.NONE))
        result = container.checks.send_test_email(SYSTEM, account.id)
        [message] = peer.messages
    assert result.ok
    assert [s.name for s in result.steps][-2:] == ["message", "quit"]
    assert message.rcpt_tos == ("office@example.test",)
    assert b"Postroom test message" in message.raw
    [entry] = container.log.query(SYSTEM, LogFilter(account_id=account.id)).items
    assert entry.action == "test-email"
    assert "office@example.test" in entry.message
    with pytest.raises(InvalidInput):
        container.checks.send_test_email(SYSTEM, account.id, "not an address")


def test_per_employee_uses_the_callers_own_login(
    container: Container, make_account: MakeAccount
) -> None:
    with SmtpPeer(users={"bob": PASSWORD}) as peer:
        account = make_account(
            smtp_draft(peer.host, peer.port, Security.NONE, auth_mode=AuthMode.PER_EMPLOYEE)
        )
        user = container.people.create_user(SYSTEM, email="bob@example.test", role=Role.MEMBER)
        bob = user.as_actor()
        with pytest.raises(InvalidInput):  # no credentials stored yet: said plainly
            container.checks.check_account(bob, account.id)
        container.people.put_my_credentials(bob, account.id, "bob", PASSWORD)
        [own] = container.checks.check_account(bob, account.id)
        [system] = container.checks.check_account(SYSTEM, account.id)
    assert own.ok
    assert any(s.name == "auth" and s.outcome is StepOutcome.OK for s in own.steps)
    assert system.ok
    assert any("per-employee" in w for w in system.warnings)
    assert any(s.name == "auth" and s.outcome is StepOutcome.SKIPPED for s in system.steps)


def test_history_is_newest_first_and_limited(
    container: Container, make_account: MakeAccount
) -> None:
    with SmtpPeer() as peer:
        account = make_account(
            smtp_draft(peer.host, peer.port, Security.NONE, auth_mode=AuthMode.NONE)
        )
        for _ in range(3):
            container.checks.check_account(SYSTEM, account.id)
    records = container.checks.history(SYSTEM, account.id, limit=2)
    assert len(records) == 2
    assert records[0].id > records[1].id
    with pytest.raises(InvalidInput):
        container.checks.history(SYSTEM, account.id, limit=0)


def test_sendmail_transport_probe_and_test_email(container: Container, tmp_path: Path) -> None:
    sink = tmp_path / "sent.eml"
    binary = tmp_path / "sendmail"
    # A real executable standing in for an MTA: answers -bp, stores what it is given.
    binary.write_text(
        f'#!/bin/sh\n[ "$1" = "-bp" ] && echo "Mail queue is empty" && exit 0\ncat > {sink}\n'
    )
    binary.chmod(0o755)
    outgoing = OutgoingDraft(
        transport=Transport.SENDMAIL, auth_mode=AuthMode.NONE, sendmail_path=str(binary)
    )
    account = container.accounts.create(
        SYSTEM, AccountDraft(name="Local", email="local@example.test", outgoing=outgoing)
    )
    [probe] = container.checks.check_account(SYSTEM, account.id)
    assert probe.ok
    assert probe.protocol == "sendmail"
    assert [s.name for s in probe.steps] == ["exists", "executable", "answers"]
    mail = container.checks.send_test_email(SYSTEM, account.id, "to@example.test")
    assert mail.ok
    assert b"To: to@example.test" in sink.read_bytes()
    missing = replace(outgoing, sendmail_path=str(tmp_path / "nope"))
    [gone] = container.checks.check_values(
        SYSTEM, AccountDraft(name="", email="", outgoing=missing)
    )
    assert not gone.ok
    assert "there is no file" in gone.error_message
    team = container.people.create_team(SYSTEM, "Local").id
    manager = Actor(97, "boss@example.test", Role.MANAGER, frozenset({team}))
    form = AccountDraft(name="", email="", team_id=team, outgoing=missing)
    with pytest.raises(Forbidden, match="sendmail"):  # probing runs the binary: admins only
        container.checks.check_values(manager, form)
