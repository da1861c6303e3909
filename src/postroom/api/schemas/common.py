"""Building blocks every schema family shares: the strict base model, header-safe strings, the
page envelope and secret unwrapping."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    SecretStr,
    field_validator,
)
from pydantic_core import PydanticCustomError

from postroom.services.pages import Page

T = TypeVar("T")


def _bad_text(value: Any) -> str | None:
    """Why `value` (or a string inside it) cannot be stored or sent, or None when it can."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, str):
        if "\x00" in value:
            return "must not contain NUL (U+0000)"
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "must be valid Unicode (a lone surrogate escape such as \\ud800 is not)"
        return None
    if isinstance(value, Mapping):
        value = [*value.keys(), *value.values()]
    if isinstance(value, list | tuple):
        return next((why for why in map(_bad_text, value) if why), None)
    return None


class Strict(BaseModel):
    """Unknown fields are refused (422 naming them) rather than silently dropped, and so is text
    no database or mail server takes: NUL (PostgreSQL refuses it in text; RFC 5322 §2.3 forbids
    it in messages) and lone surrogates (JSON escapes that are not UTF-8, RFC 8259 §8.2)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _storable_text(cls, value: Any) -> Any:
        why = _bad_text(value)
        if why:
            raise PydanticCustomError("bad_text", why)
        return value


class Public(BaseModel):
    """Response models: read from domain dataclasses by attribute."""

    model_config = ConfigDict(extra="forbid", from_attributes=True)


def _no_line_breaks(value: str) -> str:
    # A CR or LF in a value that ends up in a mail header or an SMTP/IMAP command line would let
    # a caller inject headers or commands (RFC 5322 §2.2, RFC 5321 §2.3.8); NUL ends C strings.
    if any(ch in value for ch in "\r\n\x00"):
        raise PydanticCustomError("line_break", "must not contain line breaks (CR/LF) or NUL")
    return value


HeaderStr = Annotated[str, AfterValidator(_no_line_breaks)]
"""A string that may reach a mail header or a protocol command: CR, LF and NUL refused."""


def _utc_representable(value: datetime) -> datetime:
    # 9999-12-31T23:59-14:00 is a valid ISO date whose UTC instant is past datetime.max: refuse
    # it here rather than overflow where it is stored or compared.
    if value.tzinfo is None:
        return value  # naive: the domain says "must include a time zone" where it matters
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise PydanticCustomError(
            "datetime_range", "is out of range once converted to UTC"
        ) from None
    return value


Instant = Annotated[datetime, AfterValidator(_utc_representable)]
"""A datetime whose UTC instant exists (years 1 to 9999)."""
AwareInstant = Annotated[AwareDatetime, AfterValidator(_utc_representable)]
"""An Instant that must carry a time zone."""


class PagePublic(BaseModel, Generic[T]):
    """One page of a list: the items, how many match in total, and the window asked for."""

    model_config = ConfigDict(extra="forbid")

    items: list[T]
    total: int
    offset: int
    limit: int

    @classmethod
    def of(cls, page: Page[Any], render: Callable[[Any], T]) -> Self:
        """A service's Page with each item rendered by `render`."""
        return cls(
            items=[render(i) for i in page.items],
            total=page.total,
            offset=page.offset,
            limit=page.limit,
        )


def reveal(data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` (a model_dump) with SecretStr values unwrapped, nested dicts included, for handing
    to a service; the plaintext exists only in this call's result."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, SecretStr):
            out[key] = value.get_secret_value()
        elif isinstance(value, Mapping):
            out[key] = reveal(value)
        else:
            out[key] = value
    return out
