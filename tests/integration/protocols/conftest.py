"""Shared fixtures: a throwaway CA, the loopback network policy, and an endpoint builder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from postroom.domain.accounts import Security
from postroom.protocols.endpoints import LOOPBACK_CIDRS, Endpoint, NetworkPolicy, Secret
from postroom.testing.tls import LocalCA
from tests.integration.protocols.support import PASSWORD, USER, MakeEndpoint


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA.create(Path(tmp_path_factory.mktemp("ca")))


@pytest.fixture
def policy() -> NetworkPolicy:
    return NetworkPolicy(allowed_cidrs=LOOPBACK_CIDRS)


@pytest.fixture
def make_endpoint(ca: LocalCA) -> MakeEndpoint:
    """Endpoint(127.0.0.1, port, security) trusting the test CA, with short timeouts."""

    def make(port: int, security: Security = Security.NONE, **overrides: Any) -> Endpoint:
        values: dict[str, Any] = {
            "host": "127.0.0.1",
            "port": port,
            "security": security,
            "cafile": ca.cafile,
            "timeout_s": 5.0,
            "connect_timeout_s": 5.0,
        }
        if overrides.pop("auth", False):
            values |= {"username": USER, "password": Secret(PASSWORD)}
        values |= overrides
        return Endpoint(**values)

    return make
