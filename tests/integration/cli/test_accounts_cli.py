"""`postroom accounts …` in-process: add, list, show, edit, lifecycle, defaults."""

from __future__ import annotations

import json

from postroom.cli.common import EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_USAGE, cli_actor
from postroom.wiring import Container
from tests.integration.cli.conftest import Cli

PASSWORD = "smtp-Secret-93j2"


def add_main(cli: Cli, *extra: str) -> None:
    result = cli(
        "accounts", "add", "--name", "Main", "--email", "main@example.com",
        "--smtp-host", "smtp.example.com", "--username", "main", "--password-stdin",
        *extra, input=PASSWORD + "\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr


def test_add_list_show_and_json(cli: Cli, container: Container) -> None:
    add_main(cli, "--imap-host", "imap.example.com", "--label", "Front desk")

    listed = cli("accounts", "list")
    assert listed.exit_code == 0
    assert "Main" in listed.stdout

    rows = json.loads(cli("accounts", "list", "--json").stdout)
    assert [r["name"] for r in rows] == ["Main"]
    shown = json.loads(cli("accounts", "show", "main", "--json").stdout)  # name: any case
    assert shown["outgoing"]["port"] == 587  # STARTTLS default when the port is left empty
    assert shown["outgoing"]["has_password"] is True
    assert shown["incoming"]["protocol"] == "imap"
    assert shown["incoming"]["username"] == "main"  # taken from --username
    assert shown["label"] == "Front desk"
    assert shown["created_by"].startswith("cli:")

    text = cli("accounts", "show", str(shown["id"]))
    assert text.exit_code == 0
    assert "outgoing.host" in text.stdout
    for output in (listed.stdout, text.stdout, json.dumps(rows)):
        assert PASSWORD not in output
    assert container.accounts.stored_password(shown["id"], "outgoing") == PASSWORD


def test_validation_error_names_the_field_and_exits_2(cli: Cli, container: Container) -> None:
    result = cli(
        "accounts", "add", "--name", "Bad", "--email", "not-an-address",
        "--smtp-host", "smtp.example.com", "--smtp-port", "70000", "--auth", "none",
    )  # fmt: skip
    assert result.exit_code == EXIT_USAGE
    assert "email: is not an e-mail address" in result.stderr
    assert "outgoing.port: must be between 1 and 65535" in result.stderr
    assert "Traceback" not in result.output
    assert json.loads(cli("accounts", "list", "--json", "--status", "all").stdout) == []


def test_markup_in_values_is_printed_verbatim(cli: Cli) -> None:
    result = cli(
        "accounts", "add", "--name", "[/]x", "--email", "m@example.com",
        "--smtp-host", "smtp.example.com", "--auth", "none", "--description", "[/] [red]",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert "[/] [red]" in result.stdout
    assert "[/]x" in cli("accounts", "list").stdout


def test_edit_keeps_the_password_and_moves_the_port_with_security(
    cli: Cli, container: Container
) -> None:
    add_main(cli)
    result = cli("accounts", "edit", "Main", "--security", "ssl", "--label", "new", "--json")
    assert result.exit_code == 0, result.stderr
    edited = json.loads(result.stdout)
    assert edited["outgoing"]["port"] == 465  # seed 004: ticking SSL switches 587/25 to 465
    assert edited["label"] == "new"
    assert container.accounts.stored_password(edited["id"], "outgoing") == PASSWORD

    custom = json.loads(cli("accounts", "edit", "Main", "--smtp-port", "2525", "--json").stdout)
    assert custom["outgoing"]["port"] == 2525
    kept = json.loads(cli("accounts", "edit", "Main", "--security", "starttls", "--json").stdout)
    assert kept["outgoing"]["port"] == 2525  # a port the admin chose is never changed for them

    assert cli("accounts", "edit", "Main").exit_code == EXIT_USAGE  # nothing to change
    removed = json.loads(cli("accounts", "edit", "Main", "--no-outgoing", "--json").stdout)
    assert removed["outgoing"] is None


def test_lifecycle_and_delete_confirmation(cli: Cli, container: Container) -> None:
    add_main(cli)
    refused = cli("accounts", "delete", "Main")  # CliRunner's stdin is not a terminal
    assert refused.exit_code == EXIT_USAGE
    assert "--yes" in refused.stderr
    assert container.accounts.find(cli_actor(), "Main").status.value == "active"

    assert "inactive" in cli("accounts", "deactivate", "Main").stdout
    assert "active" in cli("accounts", "activate", "Main").stdout
    assert cli("accounts", "delete", "Main", "--yes").exit_code == 0
    illegal = cli("accounts", "activate", "Main")
    assert illegal.exit_code == EXIT_CONFLICT
    assert "cannot activate an account that is deleted" in illegal.stderr
    assert "is now inactive" in cli("accounts", "restore", "Main").stdout
    assert cli("accounts", "show", "Nope").exit_code == EXIT_NOT_FOUND


def test_set_default_and_team(cli: Cli, container: Container) -> None:
    assert cli("teams", "create", "Sales").exit_code == 0
    add_main(cli, "--team", "sales")
    result = cli("accounts", "set-default", "Main")
    assert result.exit_code == 0, result.stderr
    assert "default outgoing" in result.stdout
    account = container.accounts.find(cli_actor(), "Main")
    assert account.is_default_outgoing
    assert account.team_id is not None
    assert container.accounts.default_for("outgoing", account.team_id) == account
    no_incoming = cli("accounts", "set-default", "Main", "--direction", "incoming")
    assert no_incoming.exit_code == EXIT_CONFLICT
    assert "no incoming server" in no_incoming.stderr
    unknown_team = cli("accounts", "edit", "Main", "--team", "Nope")
    assert unknown_team.exit_code == EXIT_USAGE
    assert "team_id: no team 'Nope'" in unknown_team.stderr
