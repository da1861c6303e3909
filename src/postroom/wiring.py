"""The composition root: settings → engine → repositories → adapters → services.

Every edge (API, web, CLI, worker) builds one Container with `build()` and calls services on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from postroom.protocols.endpoints import NetworkPolicy
from postroom.services.accounts import AccountService
from postroom.services.audit import AuditService
from postroom.services.log import SystemLogService
from postroom.services.people import PeopleService
from postroom.services.reports import ReportService
from postroom.settings import Settings, load_settings, resolve_secret_keys
from postroom.storage import engine as engine_mod
from postroom.storage.accounts import AccountRepository
from postroom.storage.audit import AuditRepository
from postroom.storage.people import PeopleRepository
from postroom.storage.reports import ReportRepository
from postroom.storage.secrets import SecretBox


@dataclass
class Container:
    """Everything an edge needs. Areas add their services as attributes in `build()`."""

    settings: Settings
    engine: sa.Engine
    secrets: SecretBox
    network_policy: NetworkPolicy
    accounts: AccountService
    people: PeopleService
    audit: AuditService
    log: SystemLogService
    reports: ReportService
    extras: dict[str, Any] = field(default_factory=dict)

    def migrate(self) -> None:
        """Bring the database schema up to date (idempotent)."""
        engine_mod.upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()


def build(settings: Settings | None = None) -> Container:
    settings = settings or load_settings()
    engine = engine_mod.make_engine(settings.effective_database_url)
    secrets = SecretBox(resolve_secret_keys(settings))
    account_repo = AccountRepository(secrets)
    people_repo = PeopleRepository(secrets)
    audit_repo = AuditRepository()
    audit = AuditService(engine, audit_repo, account_repo)
    return Container(
        settings=settings,
        engine=engine,
        secrets=secrets,
        network_policy=NetworkPolicy(allowed_cidrs=settings.effective_allowed_networks),
        accounts=AccountService(engine, account_repo, people_repo, audit, cafile=settings.ca_file),
        people=PeopleService(engine, people_repo, account_repo, audit),
        audit=audit,
        log=SystemLogService(engine, audit_repo, settings.log_retention_days),
        reports=ReportService(engine, ReportRepository()),
    )
