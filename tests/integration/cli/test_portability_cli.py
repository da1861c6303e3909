"""`postroom accounts export|import`: YAML round trips with and without secrets, all or nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from postroom.cli.common import EXIT_USAGE, cli_actor, get_container
from postroom.domain.accounts import AccountQuery, AccountStatus
from postroom.domain.people import Actor, Role
from postroom.errors import Forbidden
from postroom.services.portability import PortabilityService
from postroom.storage.secrets import SecretBox
from postroom.wiring import Container
from tests.integration.cli.conftest import Cli

SMTP_PASSWORD = "smtp-pw-Zq81"
IMAP_PASSWORD = "imap-pw-Lx07"


def seed(cli: Cli) -> None:
    assert cli("teams", "create", "Sales").exit_code == 0
    result = cli(
        "accounts", "add", "--name", "Sales", "--email", "sales@example.com", "--team", "Sales",
        "--smtp-host", "smtp.example.com", "--username", "sales", "--password-stdin",
        "--imap-host", "imap.example.com", "--incoming-password-stdin", "--folder", "INBOX",
        "--folder", "Support",
        input=f"{SMTP_PASSWORD}\n{IMAP_PASSWORD}\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    backup = cli(
        "accounts", "add", "--name", "Backup", "--email", "backup@example.com",
        "--transport", "sendmail", "--auth", "none",
    )  # fmt: skip
    assert backup.exit_code == 0, backup.stderr
    assert cli("accounts", "deactivate", "Backup").exit_code == 0


def fresh_instance(cli: Cli, tmp_path: Path, name: str, key: str) -> None:
    """Point later commands at a new, empty database (with the given key)."""
    other = tmp_path / name
    cli.set_env(
        POSTROOM_VAR_DIR=str(other),
        POSTROOM_DATABASE_URL=f"sqlite:///{other / 'postroom.db'}",
        POSTROOM_SECRET_KEY=key,
    )
    assert cli("teams", "create", "Sales").exit_code == 0


def accounts_of(container: Container) -> dict[str, dict[str, object]]:
    page = container.accounts.list(cli_actor(), AccountQuery(status=None))
    return {a.name: json.loads(json.dumps(a, default=str)) for a in page.items}


def test_round_trip_without_secrets(cli: Cli, tmp_path: Path, key: str) -> None:
    seed(cli)
    exported = cli("accounts", "export")
    assert exported.exit_code == 0, exported.stderr
    for secret in (SMTP_PASSWORD, IMAP_PASSWORD, "password_encrypted"):
        assert secret not in exported.stdout
    document = yaml.safe_load(exported.stdout)
    assert [a["name"] for a in document["accounts"]] == ["Backup", "Sales"]
    (tmp_path / "accounts.yaml").write_text(exported.stdout)

    fresh_instance(cli, tmp_path, "b", key)
    imported = cli("accounts", "import", str(tmp_path / "accounts.yaml"), "--json")
    assert imported.exit_code == 0, imported.stderr
    assert json.loads(imported.stdout)["created"] == ["Backup", "Sales"]
    container = get_container()
    sales = container.accounts.find(cli_actor(), "Sales")
    assert sales.outgoing is not None
    assert not sales.outgoing.has_password
    assert sales.incoming is not None
    assert sales.incoming.folders == ("INBOX", "Support")
    assert container.accounts.find(cli_actor(), "backup").status is AccountStatus.INACTIVE
    assert yaml.safe_load(cli("accounts", "export").stdout) == document  # same data again

    again = cli("accounts", "import", "-", input=exported.stdout)
    assert "skipped 2: Backup, Sales" in again.stdout
    changed = exported.stdout.replace("port: 993", "port: 1993")
    assert "updated 1: Sales" in cli("accounts", "import", "-", input=changed).stdout
    assert container.accounts.find(cli_actor(), "Sales").incoming.port == 1993  # type: ignore[union-attr]


def test_round_trip_with_secrets_needs_the_same_key(cli: Cli, tmp_path: Path, key: str) -> None:
    seed(cli)
    target = tmp_path / "with-secrets.yaml"
    assert cli("accounts", "export", "--with-secrets", "-o", str(target)).exit_code == 0
    text = target.read_text()
    assert target.stat().st_mode & 0o077 == 0  # owner-only
    assert SMTP_PASSWORD not in text
    assert IMAP_PASSWORD not in text
    assert text.count("password_encrypted: k") == 2

    fresh_instance(cli, tmp_path, "same-key", key)
    assert cli("accounts", "import", str(target)).exit_code == 0
    container = get_container()
    sales = container.accounts.find(cli_actor(), "Sales")
    assert container.accounts.stored_password(sales.id, "outgoing") == SMTP_PASSWORD
    assert container.accounts.stored_password(sales.id, "incoming") == IMAP_PASSWORD
    assert "skipped 2" in cli("accounts", "import", str(target)).stdout  # same passwords

    fresh_instance(cli, tmp_path, "other-key", SecretBox.new_key())
    refused = cli("accounts", "import", str(target))
    assert refused.exit_code == EXIT_USAGE
    assert "accounts[1].outgoing.password_encrypted: cannot be decrypted" in refused.stderr
    assert "accounts[1].incoming.password_encrypted: cannot be decrypted" in refused.stderr
    assert accounts_of(get_container()) == {}  # Backup (record 0) was valid: not written either


def test_bad_records_name_index_and_field_and_write_nothing(cli: Cli, container: Container) -> None:
    document = {
        "format": "postroom-accounts",
        "version": 1,
        "accounts": [
            {"name": "Good", "email": "good@example.com"},
            {"name": "Typo", "email": "t@example.com", "colour": "#fff",
             "outgoing": {"host": "smtp.example.com", "auth_mode": "none", "prot": 25}},
            {"name": "Types", "email": "x@example.com", "status": "gone", "debug": "yes",
             "incoming": {"host": "imap.example.com", "username": "u", "port": "993"}},
            {"name": "Plain", "email": "p@example.com", "team": "Nope",
             "outgoing": {"host": "h.example.com", "username": "u", "password": "hunter2"}},
            {"name": "GOOD", "email": "dup@example.com"},
        ],
    }  # fmt: skip
    result = cli("accounts", "import", "-", input=yaml.safe_dump(document))
    assert result.exit_code == EXIT_USAGE
    for expected in (
        "accounts[1].colour: is not a known field",
        "accounts[1].outgoing.prot: is not a known field",
        "accounts[2].status: must be one of active, inactive, deleted",
        "accounts[2].debug: must be true or false",
        "accounts[2].incoming.port: must be a whole number",
        "accounts[3].team: no team named 'Nope'",
        "accounts[3].outgoing.password: plaintext passwords are not imported",
        "accounts[4].name: repeats the name of accounts[0]",
    ):
        assert expected in result.stderr
    assert "hunter2" not in result.output
    assert accounts_of(container) == {}
    assert container.audit.list(cli_actor()).total == 0

    assert cli("accounts", "import", "-", input="format: [").exit_code == EXIT_USAGE
    wrong = cli("accounts", "import", "-", input="format: other\nversion: 1\naccounts: []\n")
    assert "format: must be 'postroom-accounts'" in wrong.stderr


def test_failover_by_name_dry_run_and_access(cli: Cli, container: Container) -> None:
    def account(name: str, failover: str) -> dict[str, object]:
        return {
            "name": name,
            "email": f"{name.lower()}@example.com",
            "outgoing": {"host": "smtp.example.com", "auth_mode": "none",
                         "failover_account": failover},
        }  # fmt: skip

    # A and B fail over to each other: both are new, so the references resolve in a second pass.
    text = yaml.safe_dump(
        {"format": "postroom-accounts", "version": 1,
         "accounts": [account("A", "B"), account("B", "A")]}
    )  # fmt: skip
    dry = cli("accounts", "import", "-", "--dry-run", input=text)
    assert "would be created 2: A, B" in dry.stdout
    assert accounts_of(container) == {}
    assert cli("accounts", "import", "-", input=text).exit_code == 0
    a = container.accounts.find(cli_actor(), "A")
    b = container.accounts.find(cli_actor(), "B")
    assert a.outgoing
    assert a.outgoing.failover_account_id == b.id
    assert b.outgoing
    assert b.outgoing.failover_account_id == a.id
    assert "import-create" in {e.action for e in container.audit.list(cli_actor()).items}

    team = container.people.create_team(cli_actor(), "Ops")
    manager = Actor(None, "m@example.com", Role.MANAGER, frozenset({team.id}))
    portability: PortabilityService = container.portability
    exported = portability.export_yaml(manager)  # system-wide accounts are readable
    assert "name: A" in exported
    with pytest.raises(Forbidden, match=r"accounts\[0\]: you cannot manage"):
        portability.import_yaml(manager, exported)  # system-wide accounts are admins' only
    with pytest.raises(Forbidden, match="only admins can export secrets"):
        portability.export_yaml(manager, with_secrets=True)
