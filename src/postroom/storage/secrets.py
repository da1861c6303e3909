"""Secrets at rest: authenticated encryption (Fernet = AES-128-CBC + HMAC-SHA256), key versioned.

A stored value looks like `k<key id>:<fernet token>`; the key id (first 8 hex digits of the key's
SHA-256) says which key wrote it, so rotation can tell what still needs re-encrypting.
"""

from __future__ import annotations

import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from postroom.errors import ConfigurationError, SecretError


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


class SecretBox:
    """Encrypts with the first key; decrypts with any. Never logs or reprs a value."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ConfigurationError("at least one secret key is required")
        try:
            self._fernets = {key_id(k): Fernet(k.encode()) for k in keys}
        except ValueError as exc:
            raise ConfigurationError(
                "POSTROOM_SECRET_KEY is not a valid key (32 url-safe base64-encoded bytes)"
            ) from exc
        self._current = key_id(keys[0])
        self._multi = MultiFernet(list(self._fernets.values()))

    def __repr__(self) -> str:
        return f"SecretBox(keys={len(self._fernets)}, current={self._current})"

    @property
    def current_key_id(self) -> str:
        return self._current

    def encrypt(self, plaintext: str) -> str:
        token = self._fernets[self._current].encrypt(plaintext.encode()).decode()
        return f"k{self._current}:{token}"

    def decrypt(self, stored: str) -> str:
        kid, _, token = stored.partition(":")
        fernet = self._fernets.get(kid[1:])
        try:
            if fernet is not None:
                return fernet.decrypt(token.encode()).decode()
            return self._multi.decrypt(token.encode()).decode()
        except InvalidToken as exc:
            raise SecretError() from exc

    def needs_rotation(self, stored: str) -> bool:
        return not stored.startswith(f"k{self._current}:")

    def rotate(self, stored: str) -> str:
        """Re-encrypt `stored` with the current key (no-op when it already uses it)."""
        return stored if not self.needs_rotation(stored) else self.encrypt(self.decrypt(stored))

    @staticmethod
    def new_key() -> str:
        return Fernet.generate_key().decode()
