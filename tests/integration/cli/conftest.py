"""Run the `postroom` CLI against a fresh SQLite database per test.

`cli` invokes commands in-process through Typer's CliRunner; the environment points settings at
the test's tmp dir. `container` is the same container the commands use, for arranging data and
checking results through the services.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from postroom.cli.common import get_container
from postroom.cli.main import app
from postroom.storage.secrets import SecretBox
from postroom.wiring import Container


def _forget_container() -> None:
    if get_container.cache_info().currsize:
        get_container().close()
    get_container.cache_clear()


@dataclass
class Cli:
    env: dict[str, str]
    monkeypatch: pytest.MonkeyPatch

    def __call__(self, *args: str, input: str | None = None) -> Result:
        return CliRunner().invoke(app, list(args), input=input)

    def set_env(self, **values: str) -> None:
        """Change the environment of later commands (a new container is built for them)."""
        for key, value in values.items():
            self.monkeypatch.setenv(key, value)
            self.env[key] = value
        _forget_container()


def cli_env(tmp_path: Path, key: str) -> dict[str, str]:
    return {
        "POSTROOM_ENV": "test",
        "POSTROOM_VAR_DIR": str(tmp_path),
        "POSTROOM_DATABASE_URL": f"sqlite:///{tmp_path / 'postroom.db'}",
        "POSTROOM_SECRET_KEY": key,
    }


@pytest.fixture
def key() -> str:
    return SecretBox.new_key()


@pytest.fixture
def cli(tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Cli]:
    env = cli_env(tmp_path, key)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _forget_container()
    yield Cli(env, monkeypatch)
    _forget_container()


@pytest.fixture
def container(cli: Cli) -> Container:
    return get_container()
