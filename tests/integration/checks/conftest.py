"""A container on a per-test SQLite file whose probes trust both test CAs (the in-process
aiosmtpd peers' and the Postfix/Dovecot fixtures'), plus builders for accounts pointing at them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme

from postroom.domain.accounts import (
    Account,
    AccountDraft,
    AuthMode,
    IncomingDraft,
    IncomingProtocol,
    OutgoingDraft,
    Security,
)
from postroom.domain.people import Actor
from postroom.settings import load_settings
from postroom.testing.tls import LocalCA
from postroom.wiring import Container, build

USER, PASSWORD = "alice", "s3cr3t-Pa55word-x9"  # no output of Postroom may contain PASSWORD
DEADLINE_S = 3.0

MakeContainer = Callable[..., Container]
MakeAccount = Callable[..., Account]


@pytest.fixture(scope="session")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCA:
    return LocalCA.create(Path(tmp_path_factory.mktemp("ca")))


@pytest.fixture(scope="session")
def cafile(ca: LocalCA, mail_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One bundle trusting the aiosmtpd peers' CA and the one behind Postfix and Dovecot."""
    bundle = Path(tmp_path_factory.mktemp("bundle")) / "cas.pem"
    bundle.write_bytes(Path(ca.cafile).read_bytes() + mail_ca.cert_pem.bytes())
    return str(bundle)


@pytest.fixture
def make_container(tmp_path: Path, cafile: str) -> Iterator[MakeContainer]:
    built: list[Container] = []

    def make(**overrides: Any) -> Container:
        values: dict[str, Any] = {
            "database_url": f"sqlite:///{tmp_path}/t{len(built)}.db",
            "var_dir": tmp_path,
            "env": "test",
            "ca_file": cafile,
            "check_deadline_s": DEADLINE_S,
        }
        container = build(load_settings(**(values | overrides)))
        container.migrate()
        built.append(container)
        return container

    yield make
    for container in built:
        container.close()


@pytest.fixture
def container(make_container: MakeContainer) -> Container:
    return make_container()


def smtp_draft(
    host: str,
    port: int,
    security: Security,
    *,
    username: str = USER,
    password: str | None = PASSWORD,
    auth_mode: AuthMode = AuthMode.CENTRAL,
    name: str = "Sales",
    email: str = "sales@example.test",
    debug: bool = False,
    team_id: int | None = None,
) -> AccountDraft:
    outgoing = OutgoingDraft(
        host=host,
        port=port,
        security=security,
        auth_mode=auth_mode,
        username=username if auth_mode is AuthMode.CENTRAL else "",
        password=password,
        timeout_s=DEADLINE_S,
    )
    return AccountDraft(name=name, email=email, debug=debug, team_id=team_id, outgoing=outgoing)


def incoming_draft(
    protocol: IncomingProtocol,
    host: str,
    port: int,
    security: Security,
    username: str,
    password: str | None,
    *,
    name: str = "Support",
    email: str = "support@example.test",
) -> AccountDraft:
    incoming = IncomingDraft(
        protocol=protocol,
        host=host,
        port=port,
        security=security,
        username=username,
        password=password,
    )
    return AccountDraft(name=name, email=email, incoming=incoming)


@pytest.fixture
def make_account(container: Container) -> MakeAccount:
    def make(draft: AccountDraft) -> Account:
        return container.accounts.create(Actor.system(), draft)

    return make
