"""No password at rest, in logs, in audit entries or in reprs; production needs a key."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa

from postroom.domain.accounts import (
    AccountDraft,
    AuthMode,
    IncomingDraft,
    OutgoingDraft,
)
from postroom.domain.people import Actor, Role
from postroom.errors import ConfigurationError, InvalidInput
from postroom.protocols.endpoints import Secret
from postroom.settings import load_settings
from postroom.storage.tables import metadata
from postroom.wiring import Container, build

ADMIN = Actor.system()
SMTP = "Smtp-Pa55-q7Wm"
IMAP = "Imap-Pa55-z3Rt"
NEW_SMTP = "Smtp-N3w-x9Lp"
EMPLOYEE = "Empl-Pa55-k2Vd"
PASSWORDS = (SMTP, IMAP, NEW_SMTP, EMPLOYEE)


def exercise(container: Container) -> int:
    """Every path a password travels: create, change, failed change, credentials, use."""
    account = container.accounts.create(
        ADMIN,
        AccountDraft(
            name="Secretive",
            email="s@example.com",
            outgoing=OutgoingDraft(host="smtp.example.com", username="s", password=SMTP),
            incoming=IncomingDraft(host="imap.example.com", username="s", password=IMAP),
        ),
    )
    container.accounts.update(ADMIN, account.id, {"outgoing": {"password": NEW_SMTP}})
    with pytest.raises(InvalidInput) as bad:
        container.accounts.update(
            ADMIN, account.id, {"outgoing": {"password": NEW_SMTP + "x", "port": 0}}
        )
    assert NEW_SMTP not in str(bad.value)
    own = container.accounts.create(
        ADMIN,
        AccountDraft(
            name="Own",
            email="o@example.com",
            outgoing=OutgoingDraft(host="smtp.example.com", auth_mode=AuthMode.PER_EMPLOYEE),
        ),
    )
    user = container.people.create_user(ADMIN, email="u@example.com", role=Role.MEMBER)
    container.people.put_my_credentials(user.as_actor(), own.id, "u", EMPLOYEE)
    _, endpoint = container.accounts.outgoing_endpoint(own.id, sender_user_id=user.id)
    assert endpoint.password == Secret(EMPLOYEE)
    _, endpoint = container.accounts.outgoing_endpoint(account.id)
    assert endpoint.password == Secret(NEW_SMTP)
    container.portability.export_yaml(ADMIN, with_secrets=True)
    container.reports.mail_server_masters(ADMIN)
    return account.id


def every_stored_value(container: Container) -> str:
    with container.engine.connect() as conn:
        return "\n".join(
            repr(tuple(row))
            for table in metadata.sorted_tables
            for row in conn.execute(sa.select(table))
        )


def test_no_password_in_tables_logs_or_audit(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    # SQLAlchemy logs every statement with its parameters at INFO: the strictest log there is.
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    account_id = exercise(container)
    assert "INSERT INTO account_outgoing" in caplog.text  # the SQL log was captured
    stored = every_stored_value(container)
    assert "password_enc" not in stored  # sanity: values, not column names
    for password in PASSWORDS:
        assert password not in caplog.text
        assert password not in stored
    changes = [e.changes for e in container.audit.list(ADMIN, account_id=account_id).items]
    assert {"outgoing.password": [None, "***"]} in [
        {k: v for k, v in c.items() if "password" in k} for c in changes
    ]


def test_no_password_in_the_sqlite_file(tmp_path: Path) -> None:
    container = build(
        load_settings(database_url=f"sqlite:///{tmp_path / 'raw.db'}", var_dir=tmp_path, env="test")
    )
    container.migrate()
    exercise(container)
    # The main file and the WAL (recent writes live there until a checkpoint), then again
    # after closing, when the WAL has been folded into the main file.
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("raw.db*"))
    container.close()
    raw += b"".join(p.read_bytes() for p in tmp_path.glob("raw.db*"))
    assert b"Secretive" in raw  # the data is there, readable
    for password in PASSWORDS:
        assert password.encode() not in raw
        assert password.encode("utf-16-le") not in raw


def test_reprs_mask_secrets(container: Container) -> None:
    out = OutgoingDraft(host="h.example.com", username="u", password=SMTP)
    inc = IncomingDraft(host="i.example.com", username="u", password=IMAP)
    draft = AccountDraft(name="R", email="r@example.com", outgoing=out, incoming=inc)
    account = container.accounts.create(ADMIN, draft)
    _, endpoint = container.accounts.outgoing_endpoint(account.id)
    _, incoming = container.accounts.incoming_endpoint(account.id)
    texts = [repr(out), repr(inc), repr(draft), str(draft), repr(endpoint), f"{endpoint}"]
    texts += [repr(incoming), repr(container.secrets), repr(container.settings), repr(account)]
    for text in texts:
        assert SMTP not in text
        assert IMAP not in text
    assert "***" in repr(endpoint)
    assert container.settings.secret_key is not None
    assert container.settings.secret_key.get_secret_value() not in repr(container.settings)


def test_production_refuses_to_start_without_a_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("POSTROOM_SECRET_KEY", raising=False)
    settings = load_settings(
        env="production", var_dir=tmp_path, database_url=f"sqlite:///{tmp_path / 'p.db'}"
    )
    with pytest.raises(ConfigurationError, match="POSTROOM_SECRET_KEY must be set in production"):
        build(settings)
    assert not (tmp_path / "secret.key").exists()  # no key was made up behind the admin's back
    with pytest.raises(ConfigurationError, match="not a valid key"):
        build(load_settings(env="production", var_dir=tmp_path, secret_key="too-short"))
