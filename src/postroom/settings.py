"""Settings from the environment (prefix POSTROOM_) and an optional .env file.

Built by `load_settings()`, never at import time, so tests and tools can build their own.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from postroom.errors import ConfigurationError


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"
    TEST = "test"


class Settings(BaseSettings):
    """Every knob Postroom has. Defaults suit a developer's laptop; production must set a key."""

    model_config = SettingsConfigDict(
        env_prefix="POSTROOM_", env_file=".env", extra="ignore", frozen=True
    )

    env: Environment = Environment.DEVELOPMENT
    var_dir: Path = Path("var")
    database_url: str = ""
    secret_key: SecretStr | None = Field(
        default=None, description="Fernet key(s), comma separated; first encrypts"
    )
    host: str = "127.0.0.1"
    port: int = 8025
    max_body_bytes: int = 30 * 1024 * 1024
    log_retention_days: int = 90
    # SSRF guard: CIDRs that probes and deliveries may connect to although private/loopback.
    allowed_networks: tuple[str, ...] = ()
    company_email: str = ""
    # Extra trust anchor (PEM) for mail servers behind a private CA; the system store still applies.
    ca_file: str | None = None
    # Worker
    worker_batch_size: int = 50
    worker_lease_s: int = 120
    worker_poll_s: float = 1.0
    retry_initial_s: int = 300
    retry_max_s: int = 3600
    retry_lifetime_s: int = 5 * 24 * 3600
    # Incoming
    fetch_batch_size: int = 100
    max_message_bytes: int = 50 * 1024 * 1024
    auto_disable_auth_failures: int = 5
    auto_disable_after_hours: float = 24.0
    # Checks
    check_deadline_s: float = 20.0
    check_concurrency: int = 128
    # Web
    demo: bool = False
    session_max_age_s: int = 12 * 3600

    @field_validator("allowed_networks", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'postroom.db'}"

    @property
    def effective_allowed_networks(self) -> tuple[str, ...]:
        """Development allows loopback so the demo capture server and local peers work."""
        if self.allowed_networks or self.is_production:
            return self.allowed_networks
        return ("127.0.0.0/8", "::1/128")


def load_settings(**overrides: object) -> Settings:
    """Settings from environment + .env, with `overrides` on top (tests pass them)."""
    return Settings(**overrides)  # type: ignore[arg-type]


def resolve_secret_keys(settings: Settings) -> list[str]:
    """The encryption keys, newest first.

    Production refuses to run without an explicit key: a generated one would make every stored
    password unreadable after a restart on another host. In development a key is generated once
    into var/secret.key so that `make run` needs no setup.
    """
    if settings.secret_key is not None:
        keys = [k.strip() for k in settings.secret_key.get_secret_value().split(",") if k.strip()]
        if keys:
            return keys
    if settings.is_production:
        raise ConfigurationError(
            "POSTROOM_SECRET_KEY must be set in production (generate one with `postroom secrets new-key`)"
        )
    key_file = settings.var_dir / "secret.key"
    if key_file.exists():
        return [k for k in key_file.read_text().split() if k]
    from cryptography.fernet import Fernet

    settings.var_dir.mkdir(parents=True, exist_ok=True)
    key = Fernet.generate_key().decode()
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    return [key]


def new_token() -> str:
    """A random URL-safe token (API tokens, CSRF, one-time passwords)."""
    return secrets.token_urlsafe(32)
