"""`postroom check` through typer's CliRunner, on a database configured by environment, as a
user would run it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from postroom.cli.common import get_container
from postroom.cli.main import app
from postroom.domain.accounts import AuthMode, Security
from postroom.domain.people import Actor
from postroom.testing.peers import Script, ScriptedPeer, Silence, SmtpPeer
from postroom.wiring import Container

from .conftest import PASSWORD, USER, smtp_draft

SYSTEM = Actor.system()


@pytest.fixture
def cli_container(
    tmp_path: Path, cafile: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Container]:
    """The container the CLI will build from the environment (same database)."""
    for key, value in {
        "POSTROOM_DATABASE_URL": f"sqlite:///{tmp_path}/cli.db",
        "POSTROOM_VAR_DIR": str(tmp_path),
        "POSTROOM_ENV": "test",
        "POSTROOM_CA_FILE": cafile,
        "POSTROOM_CHECK_DEADLINE_S": "1",
    }.items():
        monkeypatch.setenv(key, value)
    get_container.cache_clear()
    container = get_container()
    yield container
    get_container.cache_clear()
    container.close()


def test_check_prints_steps_and_exits_0(cli_container: Container) -> None:
    with SmtpPeer(users={USER: PASSWORD}) as peer:
        cli_container.accounts.create(SYSTEM, smtp_draft(peer.host, peer.port, Security.NONE))
        result = CliRunner().invoke(app, ["check", "sales", "--smtp", "--transcript"])
    assert result.exit_code == 0, result.output
    assert "SMTP Sales: passed" in result.output
    assert "✓" in result.output
    assert "ehlo" in result.output
    assert "S:" in result.output  # the transcript
    assert PASSWORD not in result.output


def test_failure_shows_class_hint_and_field_and_exits_1(cli_container: Container) -> None:
    with SmtpPeer(users={USER: "another-password"}) as peer:
        cli_container.accounts.create(SYSTEM, smtp_draft(peer.host, peer.port, Security.NONE))
        result = CliRunner().invoke(app, ["check", "Sales"])
        as_json = CliRunner().invoke(app, ["check", "Sales", "--json"])
    assert result.exit_code == 1
    assert "✗" in result.output
    assert "auth_failed" in result.output
    assert "hint: check the user name and password" in result.output
    assert "field: outgoing.password" in result.output
    assert as_json.exit_code == 1
    data = json.loads(as_json.stdout)
    assert data["ok"] is False
    assert data["results"][0]["field"] == "password"
    assert PASSWORD not in result.output + as_json.output


def test_send_test_to_and_usage_errors(cli_container: Container) -> None:
    with SmtpPeer() as peer:
        cli_container.accounts.create(
            SYSTEM, smtp_draft(peer.host, peer.port, Security.NONE, auth_mode=AuthMode.NONE)
        )
        sent = CliRunner().invoke(app, ["check", "Sales", "--send-test-to", "to@example.test"])
        assert [m.rcpt_tos for m in peer.messages] == [("to@example.test",)]
    assert sent.exit_code == 0, sent.output
    assert CliRunner().invoke(app, ["check"]).exit_code == 2
    assert CliRunner().invoke(app, ["check", "Sales", "--imap"]).exit_code == 2
    assert CliRunner().invoke(app, ["check", "nobody"]).exit_code == 3


def test_check_all_summary(cli_container: Container) -> None:
    with SmtpPeer(users={USER: PASSWORD}) as good, ScriptedPeer(Script(greeting=Silence())) as hole:
        for name, peer in (("Good", good), ("Hole", hole)):
            draft = smtp_draft(peer.host, peer.port, Security.NONE, name=name)
            cli_container.accounts.create(SYSTEM, draft)
        result = CliRunner().invoke(app, ["check", "--all", "--concurrency", "4"])
        as_json = CliRunner().invoke(app, ["check", "--all", "--json"])
    assert result.exit_code == 1
    assert "2 accounts, 1 failing" in result.output
    assert "timeout" in result.output
    data = json.loads(as_json.stdout)
    assert (data["accounts"], data["failed"]) == (2, 1)
