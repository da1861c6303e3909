"""Secrets at rest: authenticated encryption with versioned keys."""

import pytest

from postroom.errors import ConfigurationError, SecretError
from postroom.settings import load_settings, resolve_secret_keys
from postroom.storage.secrets import SecretBox, key_id


def test_round_trip_and_key_id_prefix() -> None:
    box = SecretBox([SecretBox.new_key()])
    stored = box.encrypt("hunter2")
    assert stored.startswith(f"k{box.current_key_id}:")
    assert "hunter2" not in stored
    assert box.decrypt(stored) == "hunter2"
    assert "hunter2" not in repr(box)


def test_rotation_reencrypts_with_the_newest_key() -> None:
    old, new = SecretBox.new_key(), SecretBox.new_key()
    stored = SecretBox([old]).encrypt("s3cret")
    both = SecretBox([new, old])
    assert both.needs_rotation(stored)
    rotated = both.rotate(stored)
    assert rotated.startswith(f"k{key_id(new)}:")
    assert SecretBox([new]).decrypt(rotated) == "s3cret"
    assert both.rotate(rotated) == rotated


def test_tampered_or_foreign_ciphertext_is_refused() -> None:
    stored = SecretBox([SecretBox.new_key()]).encrypt("x")
    with pytest.raises(SecretError):
        SecretBox([SecretBox.new_key()]).decrypt(stored)
    with pytest.raises(SecretError):
        SecretBox([SecretBox.new_key()]).decrypt(stored[:-4] + "AAAA")


def test_bad_key_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="not a valid key"):
        SecretBox(["short"])


def test_production_refuses_to_start_without_a_key(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("POSTROOM_SECRET_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="POSTROOM_SECRET_KEY must be set"):
        resolve_secret_keys(load_settings(env="production", var_dir=tmp_path))


def test_development_generates_one_key_and_keeps_it(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("POSTROOM_SECRET_KEY", raising=False)
    first = resolve_secret_keys(load_settings(env="development", var_dir=tmp_path))
    assert resolve_secret_keys(load_settings(env="development", var_dir=tmp_path)) == first
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
