"""Fixtures for inbound tests: a migrated SQLite container per test, and per-test Dovecot users
(fresh mailboxes) with accounts pointing at them."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from postroom.domain.accounts import AccountDraft, IncomingDraft, IncomingProtocol
from postroom.domain.people import Actor
from postroom.settings import load_settings
from postroom.testing.dovecot import DovecotServer
from postroom.wiring import Container, build

MakeAccount = Callable[..., tuple[int, str]]


@pytest.fixture
def container(tmp_path: Path, dovecot: DovecotServer) -> Iterator[Container]:
    c = build(
        load_settings(
            database_url=f"sqlite:///{tmp_path}/t.db",
            var_dir=tmp_path,
            env="test",
            ca_file=str(dovecot.cafile),
            auto_disable_auth_failures=3,
        )
    )
    c.migrate()
    yield c
    c.fetching.shutdown()
    c.close()


@pytest.fixture
def make_account(container: Container, dovecot: DovecotServer) -> MakeAccount:
    """An active account on a fresh Dovecot user: returns (account id, dovecot user)."""
    return account_factory(container, dovecot)


def account_factory(container: Container, dovecot: DovecotServer) -> MakeAccount:
    def make(
        service: str = "imap",
        *,
        user: str | None = None,
        password: str | None = None,
        **incoming: object,
    ) -> tuple[int, str]:
        user = user or f"u{secrets.token_hex(5)}"
        if user not in dovecot.users:
            dovecot.add_user(user, secrets.token_urlsafe(10))
        peer = dovecot.endpoint_values()[service]
        draft = IncomingDraft(
            protocol=IncomingProtocol.POP3 if service.startswith("pop3") else IncomingProtocol.IMAP,
            host=peer.host,
            port=peer.port,
            security=peer.security,
            username=user,
            password=password or dovecot.password(user),
        )
        draft = replace(draft, **incoming)  # type: ignore[arg-type]
        account = container.accounts.create(
            Actor.system(),
            AccountDraft(
                name=f"acct-{secrets.token_hex(4)}", email=dovecot.address(user), incoming=draft
            ),
        )
        return account.id, user

    return make
