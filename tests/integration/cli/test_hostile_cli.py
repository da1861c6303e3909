"""Hostile input to the CLI: wrong types, missing or unreadable files, broken YAML and binary
stdin each end in one readable `error:` line and a meaningful exit code, never a traceback.
Each case was a traceback (or a multi-line dump) before it was fixed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from postroom.cli.common import EXIT_USAGE
from postroom.cli.main import app
from tests.integration.cli.conftest import Cli

BINARY = b"\xff\xfe\x00\x81binary\n"


def run(*args: str, stdin: bytes | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=stdin)


def one_line_error(result: Result, code: int = EXIT_USAGE) -> str:
    """The single `error:` line of a failed command (fails on a traceback or several lines)."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def account(cli: Cli) -> str:
    added = cli(
        "accounts", "add", "--name", "Out", "--email", "out@example.com",
        "--smtp-host", "smtp.example.com", "--username", "u", "--password-stdin",
        input="s3cret-pw\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.stderr
    return "Out"


def test_binary_password_on_stdin_is_refused(cli: Cli) -> None:
    # Was a UnicodeEncodeError traceback from encrypting the undecodable password.
    result = run(
        "accounts", "add", "--name", "Bin", "--email", "b@example.com",
        "--smtp-host", "smtp.example.com", "--username", "u", "--password-stdin",
        stdin=b"\xff\xfepw\n",
    )  # fmt: skip
    assert "SMTP password: stdin is not UTF-8 text" in one_line_error(result)


def test_binary_text_body_on_stdin_is_refused(cli: Cli, account: str) -> None:
    # Was a UnicodeEncodeError traceback from the MIME encoder.
    result = run("send", "--to", "x@example.com", "--account", account, "--text", "-", stdin=BINARY)
    assert "--text: stdin is not UTF-8 text (byte 0 is 0xff)" in one_line_error(result)


def test_missing_attachment_is_refused(cli: Cli, account: str, tmp_path: Path) -> None:
    # Was a FileNotFoundError / IsADirectoryError traceback.
    for path in (tmp_path / "absent.pdf", tmp_path):
        result = run("send", "--to", "x@example.com", "--account", account, "--text", "hi",
                     "--attach", str(path))  # fmt: skip
        assert "--attach: cannot be read: " in one_line_error(result)


def test_import_of_missing_directory_or_binary_input_is_refused(cli: Cli, tmp_path: Path) -> None:
    binary = tmp_path / "export.yaml"
    binary.write_bytes(BINARY)
    cases = {
        str(tmp_path / "absent.yaml"): "No such file or directory",
        str(tmp_path): "Is a directory",
        str(binary): "is not UTF-8 text",
    }
    for path, says in cases.items():
        assert says in one_line_error(run("accounts", "import", path))
    assert "FILE: stdin is not UTF-8 text" in one_line_error(
        run("accounts", "import", "-", stdin=BINARY)
    )


def test_unreadable_yaml_is_one_line_with_its_position(cli: Cli, tmp_path: Path) -> None:
    # Was PyYAML's five-line report with a caret drawing.
    broken = tmp_path / "broken.yaml"
    broken.write_text("format: postroom-accounts\naccounts: [\n  {name: x\n", encoding="utf-8")
    line = one_line_error(run("accounts", "import", str(broken)))
    assert "file: is not valid YAML" in line
    assert "(line 4, column 1)" in line


def test_imported_values_no_database_takes_are_refused(cli: Cli, account: str) -> None:
    exported = run("accounts", "export")
    assert exported.exit_code == 0, exported.stderr
    text = exported.stdout
    nul = text.replace("description: ''", 'description: "a\\0b"', 1)
    result = run("accounts", "import", "-", stdin=nul.encode())
    assert "accounts[0].description: must not contain NUL" in one_line_error(result)


def test_export_to_an_unwritable_place_is_refused(cli: Cli, account: str, tmp_path: Path) -> None:
    # Was a FileNotFoundError traceback from os.open.
    result = run("accounts", "export", "--output", str(tmp_path / "no" / "such" / "dir.yaml"))
    assert "--output: cannot be written: No such file or directory" in one_line_error(result)


@pytest.mark.parametrize(
    "args",
    [
        ("outbox", "show", str(2**63)),
        ("outbox", "cancel", str(2**63)),
        ("inbox", "show", str(2**63)),
        ("logs", "show", str(2**63)),
    ],
)
def test_ids_past_64_bits_are_refused(cli: Cli, args: tuple[str, ...]) -> None:
    # Was an OverflowError traceback from SQLite; the storage guard makes it invalid input.
    assert "out of range" in one_line_error(run(*args))


def test_wrong_types_and_ranges_are_usage_errors(cli: Cli, account: str) -> None:
    for args in (
        ("accounts", "edit", account, "--smtp-port", "abc"),
        ("accounts", "list", "--offset", "-1"),
        ("serve", "--port", "99999999"),  # was an OverflowError from bind() in a thread
    ):
        result = run(*args)
        assert result.exit_code == EXIT_USAGE, (args, result.output)
        assert "Traceback" not in result.output
        assert "Invalid value" in result.output
    assert "outgoing.port: must be between 1 and 65535" in one_line_error(
        run("accounts", "edit", account, "--smtp-port", str(2**70))
    )


def test_the_real_command_refuses_binary_stdin_under_the_c_locale(cli: Cli) -> None:
    # Under LC_ALL=C Python decodes stdin with surrogateescape: only a real process shows that.
    env = {**os.environ, **cli.env, "LC_ALL": "C", "PYTHONUTF8": "0"}
    done = subprocess.run(
        [sys.executable, "-c", "from postroom.cli.main import main; main()",
         "accounts", "add", "--name", "C", "--email", "c@example.com",
         "--smtp-host", "smtp.example.com", "--username", "u", "--password-stdin"],
        input=b"\xff\xfe\n", capture_output=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == EXIT_USAGE, done.stderr
    assert b"Traceback" not in done.stderr
    assert done.stderr.decode().strip() == "error: SMTP password: stdin is not UTF-8 text"
