"""Where to connect and how: the endpoint (host, port, TLS policy, credentials), a secret that
never prints itself, and the network policy that keeps probes away from internal addresses.

The policy resolves a host name once and hands back the addresses to connect to; the adapters
connect to those IPs (so a second, different DNS answer cannot redirect them: no DNS rebinding)
while TLS still checks the certificate against the name (SNI + hostname check).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass

from postroom.domain.accounts import Security
from postroom.errors import DestinationRefused, InvalidInput

LOOPBACK_CIDRS = ("127.0.0.0/8", "::1/128")


class Secret:
    """A string that shows itself as '***' in str(), repr() and f-strings; `.reveal()` gives it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One server to talk to. `timeout_s` bounds each read; `connect_timeout_s` the TCP connect.

    `cafile` adds a trust anchor (a private CA, or the test CA) to the system's; it does not
    replace the system store.
    """

    host: str
    port: int
    security: Security
    verify_certificate: bool = True
    username: str = ""
    password: Secret | None = None
    timeout_s: float = 30.0
    connect_timeout_s: float = 10.0
    helo_name: str = ""
    cafile: str | None = None

    def __post_init__(self) -> None:
        problems: dict[str, str] = {}
        if not self.host or any(c in self.host for c in " \r\n\0/"):
            problems["host"] = "a host name or IP address is required"
        if not 0 < self.port < 65536:
            problems["port"] = "the port must be between 1 and 65535"
        if self.timeout_s <= 0 or self.connect_timeout_s <= 0:
            problems["timeout_s"] = "timeouts must be positive"
        if problems:
            raise InvalidInput(fields=problems)

    @property
    def password_value(self) -> str:
        return self.password.reveal() if self.password is not None else ""


@dataclass(frozen=True, slots=True)
class Address:
    """A resolved destination: the IP to connect to and the socket family."""

    ip: str
    port: int
    family: socket.AddressFamily


@dataclass(frozen=True, slots=True)
class NetworkPolicy:
    """The SSRF guard: only globally routable unicast addresses, plus an allow-list of CIDRs.

    Private, loopback, link-local, multicast, unspecified and other non-global addresses are
    refused unless inside `allowed_cidrs` (development: LOOPBACK_CIDRS). A name that resolves to
    any refused address is refused whole, so a mixed DNS answer cannot smuggle one in.
    """

    allowed_cidrs: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        try:
            for cidr in self.allowed_cidrs:
                ipaddress.ip_network(cidr)
        except ValueError as exc:
            raise InvalidInput(fields={"allowed_cidrs": str(exc)}) from exc

    def allows(self, ip: str) -> bool:
        address = ipaddress.ip_address(ip)
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        for cidr in self.allowed_cidrs:
            network = ipaddress.ip_network(cidr)
            if address.version == network.version and address in network:
                return True
        return address.is_global and not address.is_multicast

    def resolve(self, host: str, port: int) -> list[Address]:
        """Resolve `host` once; raise DestinationRefused if any address is not allowed.

        Raises socket.gaierror when the name does not resolve.
        """
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        addresses: list[Address] = []
        for family, _type, _proto, _name, sockaddr in infos:
            ip = str(sockaddr[0])
            if not self.allows(ip):
                raise DestinationRefused(
                    f"connections to {ip} ({host}) are not allowed: it is a private, loopback, "
                    "link-local or otherwise internal address; an administrator can allow it "
                    "in the network allow-list"
                )
            if all(a.ip != ip for a in addresses):
                addresses.append(Address(ip, port, family))
        return addresses
