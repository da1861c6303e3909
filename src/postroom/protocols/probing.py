"""The staged probe: run named steps, time each, stop at the first failure and classify it.

    probe = Probe("smtp", endpoint, deadline_s=20)
    with probe.step("connect") as note:
        sock = open_connection(policy, probe.wire)
        note.message = "connected"
    return probe.result()

A failing step records itself and raises `StepFailed`; `Probe.run` catches that, so a probe body
is written as a straight line. The same failure can be turned into a Postroom error
(`Probe.error()`) for callers that want exceptions (the delivery session).
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import ClassVar, TypeVar

from postroom import errors
from postroom.domain.accounts import Security
from postroom.domain.checks import (
    CheckResult,
    ErrorClass,
    Failure,
    ProbeContext,
    Step,
    StepOutcome,
    TlsDetails,
    classify,
    exception_chain,
    is_disconnect,
)
from postroom.protocols import tls
from postroom.protocols.endpoints import Endpoint, NetworkPolicy
from postroom.protocols.transcript import Transcript
from postroom.protocols.wire import Deadline, Wire, open_connection, tls_established, wrap_tls


class ProbeFailed(errors.ProtocolError):
    """A step failed for a reason the adapter already classified (no exception to read)."""

    def __init__(self, failure: Failure, code: int | None = None) -> None:
        self.failure = failure
        self.code = code
        super().__init__(failure.message)


class StepFailed(Exception):
    """Internal: a step failed and was recorded; unwinds the probe body."""


@dataclass
class StepNote:
    """What a running step will report: its message, and whether it ended with a warning."""

    message: str = ""
    warning: bool = False


class Probe:
    def __init__(
        self,
        protocol: str,
        endpoint: Endpoint,
        *,
        deadline_s: float | None,
        transcript: Transcript | None = None,
    ) -> None:
        self.protocol = protocol
        self.endpoint = endpoint
        self.transcript = transcript if transcript is not None else Transcript(protocol)
        self.wire = Wire(endpoint, deadline=Deadline(deadline_s), transcript=self.transcript)
        self.tls: TlsDetails | None = None
        self.failure: Failure | None = None
        self.exception: BaseException | None = None
        self._steps: list[Step] = []
        self._warnings: list[str] = []

    def connect(self, policy: NetworkPolicy) -> socket.socket:
        """The steps every protocol starts with: connect (to the address the policy resolved and
        allowed) and, for implicit TLS, the handshake; the socket is closed if TLS fails."""
        endpoint, wire = self.endpoint, self.wire
        with self.step("connect") as note:
            sock = open_connection(policy, wire)
            note.message = f"connected to {sock.getpeername()[0]} port {endpoint.port}"
        if endpoint.security is Security.NONE:
            self.skip("tls", "security is none: the connection is not encrypted")
            self.warn("the connection is not encrypted")
        elif endpoint.security is Security.SSL:
            try:
                with self.step("tls") as note:
                    sock = wrap_tls(sock, wire)
                    details = tls_established(sock, wire)
                    self.record_tls(details)
                    note.message = tls.summary(details)
            except BaseException:
                sock.close()
                raise
        return sock

    @contextmanager
    def step(self, name: str) -> Iterator[StepNote]:
        note = StepNote()
        started = time.monotonic()
        try:
            yield note
        except ProbeFailed as exc:
            failure, self.exception = exc.failure, exc
        except Exception as exc:
            context = ProbeContext(
                self.protocol, name, self.endpoint.host, self.endpoint.port, self.endpoint.security
            )
            failure, self.exception = classify(exc, context), exc
        else:
            outcome = StepOutcome.WARNING if note.warning else StepOutcome.OK
            self._steps.append(Step(name, outcome, _ms_since(started), note.message))
            return
        self.failure = failure
        self._steps.append(Step(name, StepOutcome.FAILED, _ms_since(started), failure.message))
        self.transcript.info(f"{name} failed: {failure.message}")
        raise StepFailed(name)

    def skip(self, name: str, message: str) -> None:
        self._steps.append(Step(name, StepOutcome.SKIPPED, 0, message))

    def warn(self, text: str) -> None:
        if text not in self._warnings:
            self._warnings.append(text)

    def record_tls(self, details: TlsDetails) -> None:
        self.tls = details
        for warning in tls.warnings_for(details):
            self.warn(warning)

    def run(self, body: Callable[[Probe], None]) -> CheckResult:
        """Run `body`; a failed step ends it early. Returns the result either way."""
        with suppress(StepFailed):
            body(self)
        return self.result()

    def result(self) -> CheckResult:
        failure = self.failure
        return CheckResult(
            protocol=self.protocol,
            ok=failure is None,
            steps=tuple(self._steps),
            error_class=failure.error_class if failure else None,
            error_message=failure.message if failure else "",
            hint=failure.hint if failure else "",
            field=failure.field if failure else None,
            tls=self.tls,
            transcript=self.transcript.entries,
            warnings=tuple(self._warnings),
        )

    def error(self) -> errors.ProtocolError:
        """The recorded failure as a Postroom error (for callers that raise, not report)."""
        if self.failure is None:
            raise RuntimeError("the probe did not fail")
        return as_error(self.failure, self.exception)


def as_error(failure: Failure, exc: BaseException | None) -> errors.ProtocolError:
    """Map a classified failure onto the error tree (ReplyError keeps the SMTP code)."""
    text = f"{failure.message} ({failure.hint})" if failure.hint else failure.message
    kind = failure.error_class
    chain = exception_chain(exc) if exc is not None else []
    if kind is ErrorClass.DESTINATION_REFUSED:
        return errors.DestinationRefused(text)
    if kind is ErrorClass.TIMEOUT:
        return errors.ProtocolTimeout(text)
    if kind in (ErrorClass.DNS, ErrorClass.REFUSED) or is_disconnect(chain):
        return errors.ConnectFailed(text)
    if kind in (ErrorClass.TLS_HANDSHAKE, ErrorClass.TLS_VERIFY, ErrorClass.STARTTLS_UNAVAILABLE):
        return errors.TlsFailed(text)
    if kind in (ErrorClass.AUTH_FAILED, ErrorClass.AUTH_UNSUPPORTED):
        return errors.AuthFailed(text)
    for item in chain:
        code = getattr(item, "smtp_code", None) or getattr(item, "code", None)
        if isinstance(code, int) and code > 0:
            return errors.ReplyError(text, code=code, text=failure.message)
    return errors.ProtocolError(text)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


T = TypeVar("T")


class Session:
    """What SmtpSession, ImapMailbox and Pop3Mailbox share: an endpoint, the network policy, and
    an opening handshake run as a probe, so a session fails exactly as a connection test would.

    `handshake` keeps the opening's CheckResult, on success and on failure (for logging).
    After opening, the wire records only into `transcript` (None: the handshake alone was
    recorded); subclasses set their own deadlines on it.
    """

    protocol: ClassVar[str]

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        policy: NetworkPolicy,
        deadline_s: float | None,
        transcript: Transcript | None,
    ) -> None:
        self.endpoint = endpoint
        self._policy = policy
        self._deadline_s = deadline_s
        self._transcript = transcript
        self.handshake: CheckResult | None = None

    def _open_with(self, handshake: Callable[[Probe, NetworkPolicy], T]) -> tuple[T, Wire]:
        """Run `handshake`; a failure is raised as the matching ProtocolError."""
        probe = Probe(
            self.protocol, self.endpoint, deadline_s=self._deadline_s, transcript=self._transcript
        )
        try:
            client = handshake(probe, self._policy)
        except StepFailed:
            self.handshake = probe.result()
            raise probe.error() from probe.exception
        self.handshake = probe.result()
        probe.wire.transcript = self._transcript
        return client, probe.wire
