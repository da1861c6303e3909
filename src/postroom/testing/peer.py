"""What the real mail peers (Dovecot, Postfix, smtp-sink) share: run-time loopback ports,
waiting for listeners, TLS files from a throwaway CA, and the endpoint values tests feed in.

Ports are chosen by binding port 0 on 127.0.0.1 and releasing them just before the peer binds
them itself; the peers need concrete numbers in their config files, so port 0 cannot be passed
through. The window between release and bind is tiny and only loopback is involved.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import trustme

from postroom.domain.accounts import Security

HOST = "127.0.0.1"
START_TIMEOUT_S = 20.0


class PeerError(RuntimeError):
    """A test peer could not be started, driven or stopped."""


@dataclass(frozen=True, slots=True)
class PeerEndpoint:
    """Where a peer's service listens and how a client must protect the connection."""

    host: str
    port: int
    security: Security

    def values(self) -> dict[str, str | int]:
        """The endpoint as form/API field values: host, port, security."""
        return {"host": self.host, "port": self.port, "security": self.security.value}


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """PEM files for a server certificate valid for localhost and 127.0.0.1."""

    cafile: Path
    certfile: Path
    keyfile: Path

    @classmethod
    def issue(cls, ca: trustme.CA, directory: Path) -> TlsFiles:
        """Issue a server certificate from `ca` and write CA, chain and key into `directory`."""
        leaf = ca.issue_cert("localhost", HOST)
        files = cls(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
        ca.cert_pem.write_to_path(str(files.cafile))
        for blob in leaf.cert_chain_pems:
            blob.write_to_path(str(files.certfile), append=True)
        leaf.private_key_pem.write_to_path(str(files.keyfile))
        files.keyfile.chmod(0o600)
        return files

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only the test CA."""
        return ssl.create_default_context(cafile=str(self.cafile))


def free_ports(count: int) -> list[int]:
    """`count` distinct TCP ports on 127.0.0.1 that were free a moment ago."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind((HOST, 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def find_binary(name: str, *extra_dirs: str) -> str | None:
    """Path of an executable on PATH, in /usr/sbin, or in one of `extra_dirs`; else None."""
    search = ":".join(["/usr/sbin", "/usr/bin", "/sbin", *extra_dirs])
    return shutil.which(name) or shutil.which(name, path=search)


def is_listening(port: int) -> bool:
    """True when something accepts TCP connections on 127.0.0.1:`port`."""
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_listening(
    ports: Iterable[int],
    process: subprocess.Popen[bytes] | None,
    log: Path | None,
    timeout_s: float = START_TIMEOUT_S,
) -> None:
    """Return once every port accepts connections; raise PeerError (with the log's tail) if the
    process exits first or the ports stay closed for `timeout_s`."""
    pending = list(ports)
    deadline = time.monotonic() + timeout_s
    while pending:
        if process is not None and process.poll() is not None:
            raise PeerError(f"exited with {process.returncode} before listening{tail(log)}")
        if time.monotonic() > deadline:
            raise PeerError(f"ports {pending} not listening after {timeout_s:.0f}s{tail(log)}")
        pending = [port for port in pending if not is_listening(port)]
        if pending:
            time.sleep(0.02)


def wait_closed(ports: Iterable[int], timeout_s: float = START_TIMEOUT_S) -> bool:
    """Wait until no port accepts connections any more; False if some still do at the end."""
    deadline = time.monotonic() + timeout_s
    while any(is_listening(port) for port in ports):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def tail(log: Path | None, lines: int = 30) -> str:
    """The last lines of a log file, formatted for an error message ('' when there is none)."""
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- " + str(log) + " ---\n" + "\n".join(text)


def run(argv: list[str], timeout_s: float = 60.0) -> str:
    """Run a helper command; its combined output, or PeerError naming the command on failure."""
    try:
        done = subprocess.run(argv, capture_output=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PeerError(f"{' '.join(argv)}: {exc}") from exc
    output = (done.stdout + done.stderr).decode(errors="replace")
    if done.returncode != 0:
        raise PeerError(f"{' '.join(argv)} exited with {done.returncode}:\n{output}")
    return output


def spawn(argv: list[str], output: Path) -> subprocess.Popen[bytes]:
    """Start a peer as our child with stdout and stderr appended to `output`."""
    with output.open("ab") as sink:
        return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=sink)


def terminate(process: subprocess.Popen[bytes], timeout_s: float = 10.0) -> None:
    """Make sure a process we started has ended: wait, then SIGTERM, then SIGKILL."""
    for signal_it in (None, process.terminate, process.kill):
        if signal_it is not None:
            signal_it()
        try:
            process.wait(timeout=timeout_s)
            return
        except subprocess.TimeoutExpired:
            continue


class ServerProcess:
    """A test server run as our own child process: `start()` returns self, `stop()` is safe to
    call twice, and the `with` form stops it however the block ends."""

    _process: subprocess.Popen[bytes] | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def running(self) -> bool:
        """True while the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
