"""`postroom fetch` and `postroom inbox` as a user runs them (a subprocess on the same files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from postroom.domain.people import Actor
from postroom.testing.dovecot import DovecotServer
from postroom.wiring import Container
from tests.integration.inbox.conftest import MakeAccount
from tests.integration.inbox.test_fetch_imap import mail


def postroom(tmp_path: Path, container: Container, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {
        "POSTROOM_DATABASE_URL": container.settings.effective_database_url,
        "POSTROOM_VAR_DIR": str(tmp_path),
        "POSTROOM_ENV": "test",
        "POSTROOM_CA_FILE": str(container.settings.ca_file),
    }
    return subprocess.run(
        [sys.executable, "-m", "postroom", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_fetch_and_list_from_the_command_line(
    tmp_path: Path, container: Container, make_account: MakeAccount, dovecot: DovecotServer
) -> None:
    account_id, user = make_account("imaps")
    name = container.accounts.get(Actor.system(), account_id).name
    assert container.fetching.fetch_account(account_id).ok  # sets the import start
    dovecot.deliver(user, mail("from-cli"))
    done = postroom(tmp_path, container, "fetch", name, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stored"] == 1
    listed = postroom(tmp_path, container, "inbox", "list", name, "--json")
    (item,) = json.loads(listed.stdout)
    assert item["subject"] == "from-cli"
    shown = postroom(tmp_path, container, "inbox", "show", str(item["id"]), "--raw")
    assert "\nSubject: from-cli\n" in shown.stdout


def test_failed_fetch_exits_non_zero(
    tmp_path: Path, container: Container, make_account: MakeAccount
) -> None:
    account_id, _ = make_account(password="not-the-password")
    result = postroom(tmp_path, container, "fetch", str(account_id), "--json")
    assert result.returncode == 1
    assert json.loads(result.stdout)["ok"] is False
    assert "not-the-password" not in result.stdout + result.stderr
