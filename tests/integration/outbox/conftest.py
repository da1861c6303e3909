"""A migrated SQLite container per test, and helpers to make accounts that point at a peer."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from postroom.domain.accounts import AccountDraft, AuthMode, OutgoingDraft, Security, SendMode
from postroom.domain.outbox import Draft
from postroom.domain.people import Actor
from postroom.services.multiplex import Multiplexer
from postroom.settings import load_settings
from postroom.storage.types import utcnow
from postroom.wiring import Container, build

SYSTEM = Actor.system()


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    c = build(
        load_settings(
            database_url=f"sqlite:///{tmp_path}/t.db",
            var_dir=tmp_path,
            env="test",
            worker_poll_s=0.05,
        )
    )
    c.migrate()
    yield c
    c.close()


def make_account(c: Container, port: int, name: str = "Peer", **outgoing: Any) -> int:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "security": Security.NONE,
        "auth_mode": AuthMode.NONE,
        "from_address": f"{name.lower()}@sender.example",
        "timeout_s": 5.0,
        "send_mode": SendMode.QUEUED,
    }
    values.update(outgoing)
    account = c.accounts.create(
        SYSTEM,
        AccountDraft(
            name=name,
            email=f"{name.lower()}@sender.example",
            outgoing=OutgoingDraft(**values),
        ),
    )
    return account.id


def draft(account_id: int, *to: str, **kw: Any) -> Draft:
    return Draft(
        to=to or ("rcpt@dest.example",),
        subject=kw.pop("subject", "Hello"),
        text=kw.pop("text", "Body"),
        account_id=account_id,
        **kw,
    )


def drain(c: Container, owner: str = "test-worker") -> int:
    """Claim and deliver everything due now as the worker does (every chunk's steps driven by
    one Multiplexer); returns the results count."""
    total = 0
    with ThreadPoolExecutor(2) as pool:
        chunks: Multiplexer[list[Any]] = Multiplexer(pool)
        try:
            while True:
                with c.engine.begin() as conn:
                    batch = c.outbox_repo.claim(conn, owner, 100, 60, utcnow())
                if not batch:
                    return total
                for chunk in c.delivery.plan(batch, owner):
                    chunks.add(c.delivery.steps(chunk, owner))
                while len(chunks):
                    for _, result in chunks.run(60.0):
                        assert not isinstance(result, BaseException), result
                        total += len(result)
        finally:
            chunks.close()
