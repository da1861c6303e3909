"""Connection plumbing shared by the adapters: deadlines, guarded connects, implicit TLS, and
the per-connection `Wire` through which every byte is timed and recorded.

Timeouts are layered: `connect_timeout_s` for the TCP connect, `timeout_s` for each read, and
an overall `Deadline` that shortens every read so that a server trickling data (an endless
reply, a slow drip) still ends within the deadline.
"""

from __future__ import annotations

import math
import socket
import ssl
import time
from collections.abc import Callable

from postroom.domain.checks import TlsDetails
from postroom.errors import ProtocolTimeout
from postroom.protocols import tls
from postroom.protocols.endpoints import Endpoint, NetworkPolicy
from postroom.protocols.transcript import Transcript


class Deadline:
    """A point in time after which no more I/O is started; None means no overall limit."""

    def __init__(
        self, seconds: float | None, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.seconds = seconds
        self._clock = clock
        self._end = math.inf if seconds is None else clock() + seconds

    def remaining(self) -> float:
        return self._end - self._clock()

    def bound(self, timeout: float) -> float:
        """`timeout` shortened to what is left; ProtocolTimeout when nothing is left."""
        left = self.remaining()
        if left <= 0:
            raise ProtocolTimeout(f"the deadline of {self.seconds:g} s passed")
        return min(timeout, left)


class Wire:
    """How one connection does I/O: reads bounded by the deadline, traffic into the transcript."""

    def __init__(
        self, endpoint: Endpoint, *, deadline: Deadline, transcript: Transcript | None = None
    ) -> None:
        self.endpoint = endpoint
        self.deadline = deadline
        self.transcript = transcript

    def arm(self, sock: socket.socket) -> None:
        """Set the socket timeout for the next read or write."""
        timeout = self.deadline.bound(self.endpoint.timeout_s)
        if sock.gettimeout() != timeout:  # settimeout costs two fcntl calls even when unchanged
            sock.settimeout(timeout)

    def sent(self, data: bytes) -> None:
        if self.transcript is not None:
            self.transcript.client(data)

    def received(self, data: bytes) -> None:
        if self.transcript is not None:
            self.transcript.server(data)

    def info(self, text: str) -> None:
        if self.transcript is not None:
            self.transcript.info(text)

    def connected(self, text: str) -> None:
        if self.transcript is not None:
            self.transcript.connected(text)


def open_connection(policy: NetworkPolicy, wire: Wire) -> socket.socket:
    """Resolve once through `policy` and connect to the first reachable address.

    Raises DestinationRefused (policy), socket.gaierror (DNS), OSError / TimeoutError (connect).
    """
    endpoint = wire.endpoint
    addresses = policy.resolve(endpoint.host, endpoint.port)
    last_error: OSError | None = None
    for address in addresses:
        sock = socket.socket(address.family, socket.SOCK_STREAM)
        try:
            sock.settimeout(wire.deadline.bound(endpoint.connect_timeout_s))
            sock.connect((address.ip, address.port))
        except OSError as exc:
            sock.close()
            wire.info(f"connecting to {address.ip} port {address.port} failed: {exc}")
            last_error = exc
            continue
        wire.connected(f"connected to {address.ip} port {address.port}")
        return sock
    assert last_error is not None  # resolve() never returns an empty list
    raise last_error


def wrap_tls(sock: socket.socket, wire: Wire) -> ssl.SSLSocket:
    """Implicit TLS: handshake now, certificate checked against the endpoint's *name*."""
    wire.arm(sock)
    try:
        return tls_context(wire.endpoint).wrap_socket(sock, server_hostname=wire.endpoint.host)
    except BaseException:
        sock.close()
        raise


def tls_context(endpoint: Endpoint) -> ssl.SSLContext:
    """The explicit context for this endpoint (for STARTTLS/STLS and implicit TLS alike)."""
    return tls.client_context(verify=endpoint.verify_certificate, cafile=endpoint.cafile)


def tls_established(sock: socket.socket, wire: Wire) -> TlsDetails:
    """Describe the TLS session on `sock` and note it in the transcript."""
    if not isinstance(sock, ssl.SSLSocket):
        raise TypeError("not a TLS socket")
    details = tls.describe(sock)
    wire.info(f"TLS established: {tls.summary(details)}")
    return details
