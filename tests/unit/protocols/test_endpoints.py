from __future__ import annotations

import pytest

from postroom.domain.accounts import Security
from postroom.errors import DestinationRefused, InvalidInput
from postroom.protocols.endpoints import LOOPBACK_CIDRS, Endpoint, NetworkPolicy, Secret


def test_secret_never_shows_itself() -> None:
    secret = Secret("hunter2")
    endpoint = Endpoint("mail.example.com", 587, Security.STARTTLS, username="u", password=secret)
    for text in (str(secret), repr(secret), f"{secret}", repr(endpoint), str(endpoint)):
        assert "hunter2" not in text
    assert secret.reveal() == "hunter2"
    assert endpoint.password_value == "hunter2"


def test_endpoint_refuses_bad_values() -> None:
    with pytest.raises(InvalidInput) as caught:
        Endpoint("", 0, Security.SSL)
    assert set(caught.value.fields) == {"host", "port"}


@pytest.mark.parametrize(
    "ip",
    [
        "127.0.0.1",
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "::1",
        "fe80::1",
        "fc00::1",
        "::ffff:127.0.0.1",
        "::",
    ],
)
def test_default_policy_refuses_internal_addresses(ip: str) -> None:
    assert not NetworkPolicy().allows(ip)


@pytest.mark.parametrize("ip", ["8.8.8.8", "2001:4860:4860::8888", "1.1.1.1"])
def test_default_policy_allows_public_addresses(ip: str) -> None:
    assert NetworkPolicy().allows(ip)


def test_allow_list_opens_only_its_ranges() -> None:
    policy = NetworkPolicy(allowed_cidrs=LOOPBACK_CIDRS)
    assert policy.allows("127.0.0.1")
    assert policy.allows("::1")
    assert policy.allows("::ffff:127.0.0.2")
    assert not policy.allows("10.0.0.1")
    assert not policy.allows("169.254.169.254")


def test_resolve_refuses_with_a_clear_message() -> None:
    with pytest.raises(DestinationRefused, match=r"127\.0\.0\.1.*not allowed"):
        NetworkPolicy().resolve("127.0.0.1", 25)
    addresses = NetworkPolicy(allowed_cidrs=("127.0.0.0/8",)).resolve("127.0.0.1", 25)
    assert [a.ip for a in addresses] == ["127.0.0.1"]


def test_policy_refuses_bad_cidrs() -> None:
    with pytest.raises(InvalidInput):
        NetworkPolicy(allowed_cidrs=("not-a-cidr",))
