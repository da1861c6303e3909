"""`postroom secrets`, `postroom report masters`, `postroom logs`."""

from __future__ import annotations

import csv
import io
import json

import pytest
from cryptography.fernet import Fernet

from postroom.cli.common import EXIT_USAGE, cli_actor, get_container
from postroom.domain.accounts import AccountDraft, AuthMode, OutgoingDraft
from postroom.domain.people import Role
from postroom.errors import SecretError
from postroom.storage.secrets import SecretBox
from postroom.wiring import Container
from tests.integration.cli.conftest import Cli

ACCOUNT_PASSWORD = "acct-pw-8Hq2"
EMPLOYEE_PASSWORD = "own-pw-3Vb9"


def test_new_key_prints_a_usable_key_alone(cli: Cli) -> None:
    result = cli("secrets", "new-key")
    assert result.exit_code == 0
    Fernet(result.stdout.strip().encode())  # raises when it is not a key
    assert result.stdout.count("\n") == 1


def test_rotate_key_then_only_the_new_key_is_needed(
    cli: Cli, container: Container, key: str
) -> None:
    actor = cli_actor()
    account = container.accounts.create(
        actor,
        AccountDraft(
            name="Shared",
            email="shared@example.com",
            outgoing=OutgoingDraft(
                host="smtp.example.com", username="u", password=ACCOUNT_PASSWORD
            ),
        ),
    )
    employee_account = container.accounts.create(
        actor,
        AccountDraft(
            name="Own",
            email="own@example.com",
            outgoing=OutgoingDraft(host="smtp.example.com", auth_mode=AuthMode.PER_EMPLOYEE),
        ),
    )
    user = container.people.create_user(actor, email="e@example.com", role=Role.MEMBER)
    container.people.put_my_credentials(
        user.as_actor(), employee_account.id, "e", EMPLOYEE_PASSWORD
    )

    new = SecretBox.new_key()
    cli.set_env(POSTROOM_SECRET_KEY=f"{new},{key}")
    result = cli("secrets", "rotate-key")
    assert result.exit_code == 0, result.stderr
    assert f"re-encrypted 2 secret(s) with key {SecretBox([new]).current_key_id}" in result.stdout
    assert "re-encrypted 0 secret(s)" in cli("secrets", "rotate-key").stdout  # idempotent

    cli.set_env(POSTROOM_SECRET_KEY=new)
    rotated = get_container()
    assert rotated.accounts.stored_password(account.id, "outgoing") == ACCOUNT_PASSWORD
    _, endpoint = rotated.accounts.outgoing_endpoint(employee_account.id, sender_user_id=user.id)
    assert endpoint.password is not None
    assert endpoint.password.reveal() == EMPLOYEE_PASSWORD

    cli.set_env(POSTROOM_SECRET_KEY=key)  # the old key alone no longer reads anything
    with pytest.raises(SecretError):
        get_container().accounts.stored_password(account.id, "outgoing")


def test_rotate_key_with_an_unknown_secret_changes_nothing(
    cli: Cli, container: Container, key: str
) -> None:
    container.accounts.create(
        cli_actor(),
        AccountDraft(
            name="Shared",
            email="shared@example.com",
            outgoing=OutgoingDraft(
                host="smtp.example.com", username="u", password=ACCOUNT_PASSWORD
            ),
        ),
    )
    cli.set_env(POSTROOM_SECRET_KEY=SecretBox.new_key())  # the writing key is gone
    result = cli("secrets", "rotate-key")
    assert result.exit_code == 1
    assert "cannot be decrypted" in result.stderr
    cli.set_env(POSTROOM_SECRET_KEY=key)
    account = get_container().accounts.find(cli_actor(), "Shared")
    assert get_container().accounts.stored_password(account.id, "outgoing") == ACCOUNT_PASSWORD


def test_report_masters_table_json_and_csv(cli: Cli, container: Container) -> None:
    team = container.people.create_team(cli_actor(), "Sales")
    container.accounts.create(
        cli_actor(),
        AccountDraft(
            name="Sales",
            email="sales@example.com",
            label='=HYPERLINK("http://x")',
            team_id=team.id,
            outgoing=OutgoingDraft(
                host="smtp.example.com", username="u", password=ACCOUNT_PASSWORD
            ),
        ),
    )
    table = cli("report", "masters")
    assert table.exit_code == 0
    assert "Sales" in table.stdout
    rows = json.loads(cli("report", "masters", "--json").stdout)
    assert rows[0]["team"] == "Sales"
    assert rows[0]["outgoing_port"] == 587
    assert rows[0]["incoming_protocol"] is None

    text = cli("report", "masters", "--csv").stdout
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert parsed[0]["label"] == '\'=HYPERLINK("http://x")'  # neutralised for spreadsheets
    assert parsed[0]["outgoing_verify_certificate"] == "true"
    assert ACCOUNT_PASSWORD not in text + table.stdout + json.dumps(rows)


def test_logs_filters_and_show(cli: Cli, container: Container) -> None:
    account = container.accounts.create(
        cli_actor(),
        AccountDraft(
            name="Ops",
            email="ops@example.com",
            outgoing=OutgoingDraft(host="smtp.example.com", auth_mode=AuthMode.NONE),
        ),
    )
    container.log.write("System", "info", "started")
    entry = container.log.write(
        "SMTP Auth",
        "error",
        "535 authentication failed",
        account_id=account.id,
        transcript=[{"dir": "S", "line": "535 5.7.8 nope"}],
    )
    errors = json.loads(cli("logs", "--level", "error", "--json").stdout)
    assert [e["message"] for e in errors] == ["535 authentication failed"]
    by_account = json.loads(cli("logs", "--account", "ops", "--json").stdout)
    assert [e["id"] for e in by_account] == [entry]
    assert len(json.loads(cli("logs", "--json", "--limit", "1").stdout)) == 1
    assert "started" in cli("logs", "--source", "System").stdout
    shown = cli("logs", "show", str(entry))
    assert "535 5.7.8 nope" in shown.stdout
    assert cli("logs", "--level", "loud").exit_code == EXIT_USAGE
