"""The local sendmail binary as a transport (seed 002's "local host").

`send_via_sendmail` runs `sendmail -i` with the message on stdin. `-i` keeps a line with a
single "." from ending the message early. Without explicit recipients it adds `-t`: the binary
reads the recipients from the To, Cc and Bcc headers and removes Bcc before delivery. With
explicit recipients `-t` is NOT used (Postfix adds header recipients to the command-line ones,
classic sendmail removes them — the two disagree), so the caller must strip Bcc itself.

The probe runs `sendmail -bp` (list the queue): harmless on Postfix, Exim and sendmail, and it
shows the binary starts and exits. It never sends anything.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass

from postroom import errors
from postroom.domain.checks import CheckResult, ErrorClass, Step, StepOutcome

MAX_OUTPUT = 64 * 1024


@dataclass(frozen=True, slots=True)
class SendmailOutcome:
    exit_status: int
    output: str

    @property
    def ok(self) -> bool:
        return self.exit_status == 0


def _run(argv: Sequence[str], stdin: bytes | None, timeout_s: float) -> SendmailOutcome:
    try:
        done = subprocess.run(
            list(argv),
            input=stdin if stdin is not None else b"",
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise errors.ProtocolTimeout(f"{argv[0]} did not finish within {timeout_s:g} s") from exc
    except OSError as exc:
        raise errors.DeliveryError(f"{argv[0]} cannot be run: {exc.strerror or exc}") from exc
    output = done.stdout[:MAX_OUTPUT].decode("utf-8", "replace").strip()
    return SendmailOutcome(done.returncode, output)


def send_via_sendmail(
    path: str,
    raw: bytes,
    recipients: Sequence[str] | None = None,
    *,
    sender: str = "",
    timeout_s: float = 60.0,
) -> SendmailOutcome:
    """Hand `raw` to the sendmail binary at `path`; the exit status says whether it took it.

    Raises DeliveryError when the binary cannot be run, ProtocolTimeout when it hangs
    (the process is killed), InvalidInput for addresses that could be read as options.
    """
    addresses = list(recipients or ())
    if sender and (sender.startswith("-") or any(c in sender for c in "\r\n\0")):
        raise errors.InvalidInput(fields={"sender": "not a valid envelope sender"})
    if any(not a or any(c in a for c in "\r\n\0") for a in addresses):
        raise errors.InvalidInput(fields={"recipients": "not a valid recipient address"})
    argv = [path, "-i"]
    if sender:
        argv += ["-f", sender]
    # "--" ends the options, so an address starting with "-" is never read as one.
    argv += ["--", *addresses] if addresses else ["-t"]
    return _run(argv, raw, timeout_s)


def probe_sendmail(path: str, *, timeout_s: float = 10.0) -> CheckResult:
    """The binary exists, is executable, and answers (`-bp` within the timeout)."""
    steps: list[Step] = []

    def failed(name: str, message: str, hint: str, kind: ErrorClass) -> CheckResult:
        steps.append(Step(name, StepOutcome.FAILED, 0, message))
        return CheckResult("sendmail", False, tuple(steps), kind, message, hint)

    if not os.path.isfile(path):
        return failed(
            "exists",
            f"there is no file at {path}",
            "install an MTA (e.g. Postfix) or set the path",
            ErrorClass.PROTOCOL_ERROR,
        )
    steps.append(Step("exists", StepOutcome.OK, 0, path))
    if not os.access(path, os.X_OK):
        return failed(
            "executable",
            f"{path} is not executable",
            "check its permissions",
            ErrorClass.PROTOCOL_ERROR,
        )
    steps.append(Step("executable", StepOutcome.OK, 0, "executable"))
    started = time.monotonic()
    try:
        outcome = _run([path, "-bp"], None, timeout_s)
    except errors.ProtocolTimeout as exc:
        return failed("answers", exc.message, "the binary hangs", ErrorClass.TIMEOUT)
    except errors.DeliveryError as exc:
        return failed("answers", exc.message, "check the path", ErrorClass.PROTOCOL_ERROR)
    elapsed = int((time.monotonic() - started) * 1000)
    first_line = outcome.output.splitlines()[0] if outcome.output else ""
    if outcome.ok:
        steps.append(Step("answers", StepOutcome.OK, elapsed, first_line or "exit status 0"))
        return CheckResult("sendmail", True, tuple(steps))
    message = f"exit status {outcome.exit_status}: {first_line}".rstrip(": ")
    steps.append(Step("answers", StepOutcome.WARNING, elapsed, message))
    return CheckResult(
        "sendmail", True, tuple(steps), warnings=(f"{path} -bp answered with {message}",)
    )
