"""Building blocks every schema family shares: the strict base model, header-safe strings, the
page envelope and secret unwrapping."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Generic, Self, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, SecretStr
from pydantic_core import PydanticCustomError

from postroom.services.pages import Page

T = TypeVar("T")


class Strict(BaseModel):
    """Unknown fields are refused (422 naming them) rather than silently dropped."""

    model_config = ConfigDict(extra="forbid")


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
