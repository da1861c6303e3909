"""The sendmail transport against a stand-in binary (a real executable script) and the system's."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from postroom import errors
from postroom.domain.checks import ErrorClass, StepOutcome
from postroom.protocols.sendmail import probe_sendmail, send_via_sendmail
from postroom.testing.services import missing_service

RAW = b"From: a@example.test\r\nTo: b@example.test\r\nBcc: c@example.test\r\n\r\nHi\r\n"


def fake_sendmail(directory: Path, body: str = "", status: int = 0) -> Path:
    """A sendmail stand-in that records its arguments and stdin next to itself."""
    script = directory / "sendmail"
    script.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > "{directory}/argv"\n'
        f'cat > "{directory}/stdin"\n'
        f"{body}\n"
        f"exit {status}\n"
    )
    script.chmod(0o755)
    return script


def test_without_recipients_uses_dash_t(tmp_path: Path) -> None:
    path = fake_sendmail(tmp_path, body='echo "queued as 42"')
    outcome = send_via_sendmail(str(path), RAW, sender="a@example.test")
    assert outcome.ok
    assert outcome.output == "queued as 42"
    assert (tmp_path / "argv").read_text().split() == ["-i", "-f", "a@example.test", "-t"]
    assert (tmp_path / "stdin").read_bytes() == RAW


def test_explicit_recipients_end_the_options(tmp_path: Path) -> None:
    path = fake_sendmail(tmp_path)
    send_via_sendmail(str(path), RAW, ["b@example.test", "-oi@example.test"])
    assert (tmp_path / "argv").read_text().split() == [
        "-i",
        "--",
        "b@example.test",
        "-oi@example.test",
    ]


def test_exit_status_and_output_are_kept(tmp_path: Path) -> None:
    path = fake_sendmail(tmp_path, body='echo "fatal: no recipients" >&2', status=75)
    outcome = send_via_sendmail(str(path), RAW)
    assert not outcome.ok
    assert outcome.exit_status == 75
    assert "no recipients" in outcome.output


def test_hanging_binary_times_out(tmp_path: Path) -> None:
    path = fake_sendmail(tmp_path, body="sleep 30")
    with pytest.raises(errors.ProtocolTimeout):
        send_via_sendmail(str(path), RAW, timeout_s=0.2)


def test_bad_arguments_are_refused(tmp_path: Path) -> None:
    path = fake_sendmail(tmp_path)
    with pytest.raises(errors.InvalidInput):
        send_via_sendmail(str(path), RAW, sender="-X/tmp/log")
    with pytest.raises(errors.InvalidInput):
        send_via_sendmail(str(path), RAW, ["b@example.test\nc@example.test"])
    with pytest.raises(errors.DeliveryError):
        send_via_sendmail(str(tmp_path / "missing"), RAW)


def test_probe_missing_and_not_executable(tmp_path: Path) -> None:
    missing = probe_sendmail(str(tmp_path / "nope"))
    assert not missing.ok
    assert missing.steps[-1].name == "exists"
    plain_file = tmp_path / "plain"
    plain_file.write_text("not a program")
    not_executable = probe_sendmail(str(plain_file))
    assert not not_executable.ok
    assert not_executable.steps[-1].name == "executable"
    assert not_executable.error_class is ErrorClass.PROTOCOL_ERROR


def test_probe_reports_a_failing_binary_as_warning(tmp_path: Path) -> None:
    result = probe_sendmail(str(fake_sendmail(tmp_path, body="echo unsupported", status=64)))
    assert result.ok
    assert result.steps[-1].outcome is StepOutcome.WARNING
    assert result.warnings


def test_probe_the_system_sendmail() -> None:
    path = shutil.which("sendmail", path=f"/usr/sbin:/usr/lib:{os.environ.get('PATH', '')}")
    if path is None:
        missing_service("no sendmail binary installed (apt-get install postfix)")
        return
    result = probe_sendmail(path)
    assert result.ok, result.error_message
    assert [s.name for s in result.steps] == ["exists", "executable", "answers"]
