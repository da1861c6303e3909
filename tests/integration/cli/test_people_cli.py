"""Bootstrap from the CLI: admin with the password on stdin, tokens printed alone, users,
teams; and the same bootstrap through the installed `postroom` executable."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from postroom.cli.common import EXIT_CONFLICT, EXIT_NOT_FOUND, EXIT_USAGE, cli_actor
from postroom.errors import Unauthenticated
from postroom.storage.secrets import SecretBox
from postroom.wiring import Container
from tests.integration.cli.conftest import Cli, cli_env

ADMIN_PASSWORD = "correct horse battery staple"
TOKEN = re.compile(r"pr_[A-Za-z0-9_-]{40,}\n")


def test_create_admin_reads_the_password_from_stdin(cli: Cli, container: Container) -> None:
    result = cli(
        "users",
        "create-admin",
        "Admin@Example.com",
        "--password-stdin",
        input=ADMIN_PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.stderr
    assert ADMIN_PASSWORD not in result.output
    user = container.people.login("admin@example.com", ADMIN_PASSWORD)  # spaces kept, \n not
    assert user.role.value == "admin"
    again = cli("users", "create-admin", "admin@example.com", "--password-stdin", input="x" * 12)
    assert again.exit_code == EXIT_CONFLICT
    empty = cli("users", "create-admin", "b@example.com", "--password-stdin", input="")
    assert empty.exit_code == EXIT_USAGE
    assert "nothing was given on stdin" in empty.stderr


def test_create_admin_without_password_prints_a_one_time_one(
    cli: Cli, container: Container
) -> None:
    result = cli("users", "create-admin", "first@example.com", "--if-none")
    assert result.exit_code == 0, result.stderr
    password = result.stdout.split("one-time password: ", 1)[1].strip()
    container.people.login("first@example.com", password)
    second = cli("users", "create-admin", "second@example.com", "--if-none")
    assert "already exists" in second.stdout
    assert container.people.find_user("second@example.com") is None


def test_tokens_create_prints_only_the_token(cli: Cli, container: Container) -> None:
    cli("users", "create", "dev@example.com", "--role", "member")
    result = cli("tokens", "create", "dev@example.com", "--name", "ci")
    assert result.exit_code == 0, result.stderr
    assert TOKEN.fullmatch(result.stdout)
    token = result.stdout.strip()
    assert container.people.authenticate(token).email == "dev@example.com"

    listed = json.loads(cli("tokens", "list", "--json").stdout)
    assert [(t["user"], t["name"]) for t in listed] == [("dev@example.com", "ci")]
    assert token not in cli("tokens", "list").stdout
    assert cli("tokens", "revoke", str(listed[0]["id"])).exit_code == 0
    with pytest.raises(Unauthenticated):
        container.people.authenticate(token)
    assert cli("tokens", "create", "nobody@example.com").exit_code == EXIT_NOT_FOUND


def test_users_and_teams(cli: Cli, container: Container) -> None:
    assert cli("teams", "create", "Sales").exit_code == 0
    assert cli("teams", "create", "sales").exit_code == EXIT_CONFLICT  # case-insensitive
    result = cli(
        "users", "create", "m@example.com", "--role", "manager", "--team", "Sales",
        "--password-stdin", "--json", input="manager-password\n",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    created = json.loads(result.stdout)
    assert created["role"] == "manager"
    teams = json.loads(cli("teams", "list", "--json").stdout)
    assert created["team_ids"] == [teams[0]["id"]]
    assert "m@example.com" in cli("users", "list").stdout
    bad_role = cli("users", "create", "x@example.com", "--role", "boss")
    assert bad_role.exit_code == EXIT_USAGE
    assert container.people.list_users(cli_actor())[0].email == "m@example.com"


def test_the_installed_command_bootstraps_a_fresh_instance(tmp_path: Path) -> None:
    """A real process: no CliRunner, no shared interpreter state."""
    executable = Path(sys.executable).with_name("postroom")
    env = {**os.environ, **cli_env(tmp_path, SecretBox.new_key())}

    def run(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(executable), *args], input=stdin, env=env, capture_output=True, text=True,
            timeout=60, check=False,
        )  # fmt: skip

    admin = run("users", "create-admin", "root@example.com", "--password-stdin", stdin="pw-" * 5)
    assert admin.returncode == 0, admin.stderr
    token = run("tokens", "create", "root@example.com")
    assert token.returncode == 0, token.stderr
    assert TOKEN.fullmatch(token.stdout)
    add = run(
        "accounts", "add", "--name", "Ops", "--email", "ops@example.com",
        "--smtp-host", "smtp.example.com", "--username", "ops", "--password-stdin",
        stdin="ops-password\n",
    )  # fmt: skip
    assert add.returncode == 0, add.stderr
    listed = run("accounts", "list", "--json")
    assert [a["name"] for a in json.loads(listed.stdout)] == ["Ops"]

    env["POSTROOM_ENV"] = "production"
    del env["POSTROOM_SECRET_KEY"]
    refused = run("accounts", "list")
    assert refused.returncode == 1
    assert "POSTROOM_SECRET_KEY must be set in production" in refused.stderr
    assert "Traceback" not in refused.stderr
