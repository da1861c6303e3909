"""One error tree for all of Postroom. Edges translate these once (API → problem details,
CLI → message + exit code, web → inline message); nothing below the edges raises anything else.

    PostroomError
    ├── InvalidInput(ValueError)          bad field values; .fields maps field → message
    ├── NotFound(LookupError)             no such record (or not visible to the caller)
    ├── Conflict                          state does not allow it: transition, duplicate, default
    ├── Unauthenticated                   no or bad credentials / token
    ├── Forbidden(PermissionError)        authenticated but not allowed
    ├── ConfigurationError                settings that cannot work (e.g. no key in production)
    ├── SecretError                       a stored secret cannot be decrypted (wrong key)
    ├── ProtocolError                     wire-level failure talking to a mail server
    │   ├── ProtocolTimeout(TimeoutError) no answer within the timeout / deadline
    │   ├── ConnectFailed(ConnectionError) DNS, refused, unreachable, dropped
    │   ├── TlsFailed                     handshake or certificate verification
    │   ├── AuthFailed                    the server rejected the credentials
    │   ├── ReplyError                    an unexpected reply; .code and .text
    │   └── DestinationRefused            SSRF guard: target address not allowed
    ├── DeliveryError                     an outgoing message could not be handed over
    └── FetchError                        incoming mail could not be fetched or stored

An exception's docstring is its default message.
"""

from __future__ import annotations

from collections.abc import Mapping


class PostroomError(Exception):
    """Postroom failed."""

    def __init__(self, message: str | None = None) -> None:
        self.message = message or (type(self).__doc__ or "").strip()
        super().__init__(self.message)


class InvalidInput(PostroomError, ValueError):
    """The input is not valid."""

    def __init__(self, message: str | None = None, fields: Mapping[str, str] | None = None):
        self.fields: dict[str, str] = dict(fields or {})
        if message is None and self.fields:
            message = "; ".join(f"{k}: {v}" for k, v in self.fields.items())
        super().__init__(message)


class NotFound(PostroomError, LookupError):
    """No such record."""


class Conflict(PostroomError):
    """The record's current state does not allow this."""


class Unauthenticated(PostroomError):
    """Missing or invalid credentials."""


class Forbidden(PostroomError, PermissionError):
    """You are not allowed to do this."""


class ConfigurationError(PostroomError):
    """The configuration cannot work."""


class SecretError(PostroomError):
    """A stored secret cannot be decrypted with the configured key."""


class ProtocolError(PostroomError):
    """The mail server conversation failed."""


class ProtocolTimeout(ProtocolError, TimeoutError):
    """The server did not answer in time."""


class ConnectFailed(ProtocolError, ConnectionError):
    """Could not connect to the server."""


class TlsFailed(ProtocolError):
    """The TLS handshake or certificate verification failed."""


class AuthFailed(ProtocolError):
    """The server rejected the credentials."""


class ReplyError(ProtocolError):
    """The server gave an unexpected reply."""

    def __init__(self, message: str | None = None, code: int | None = None, text: str = ""):
        self.code = code
        self.text = text
        super().__init__(message or f"unexpected reply {code} {text}".strip())


class DestinationRefused(ProtocolError):
    """Connections to this address are not allowed by the network policy."""


class DeliveryError(PostroomError):
    """The message could not be handed to the mail server."""


class FetchError(PostroomError):
    """Incoming mail could not be fetched."""
