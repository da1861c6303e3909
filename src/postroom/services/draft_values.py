"""Plain values (from YAML or JSON) into the typed fields of the domain's draft dataclasses.

Driven by the dataclasses' own annotations, so a field added to a draft is importable without
touching this module (a new kind of type raises TypeError, loudly).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import UTC, datetime
from enum import Enum
from types import NoneType, UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints


def convert_fields(
    cls: type,
    raw: dict[str, Any],
    prefix: str,
    errors: dict[str, str],
    renamed: Mapping[str, str],
    passthrough: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """`raw` checked against the fields of dataclass `cls`, converted to the fields' types.

    Unknown keys and wrong types go to `errors` as `<prefix>.<key>: message`. Fields in
    `renamed` (draft name → name in the file) and in `passthrough` are returned unconverted
    under their file name, for the caller to resolve (references by name, nested parts)."""
    hints = get_type_hints(cls)
    by_file_name = {renamed.get(f.name, f.name): f.name for f in fields(cls)}
    values: dict[str, Any] = {}
    for key, value in raw.items():
        field = by_file_name.get(key) if isinstance(key, str) else None
        path = f"{prefix}.{key}"
        if field is None:
            errors[path] = "is not a known field"
        elif field in renamed or field in passthrough:
            values[key] = value
        else:
            try:
                values[field] = _convert(value, hints[field])
            except (TypeError, ValueError) as exc:
                errors[path] = str(exc)
    return values


def _convert(value: Any, hint: Any) -> Any:
    """`value` from YAML as type `hint` (the draft field's annotation), or ValueError."""
    origin = get_origin(hint)
    if origin in (Union, UnionType):
        args = get_args(hint)
        if value is None and NoneType in args:
            return None
        (hint,) = [a for a in args if a is not NoneType]
        return _convert(value, hint)
    if origin is tuple:
        (item,) = get_args(hint)[:1]
        if not isinstance(value, list):
            raise ValueError("must be a list")
        return tuple(_convert(v, item) for v in value)
    if isinstance(hint, type) and issubclass(hint, Enum):
        try:
            return hint(value)
        except ValueError:
            raise ValueError(choices(hint)) from None
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError("must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("must be a whole number")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("must be a number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ValueError("must be text")
        return value
    if hint is datetime:
        return _datetime(value)
    raise TypeError(f"cannot import a value of type {hint}")  # a new draft field type


def _datetime(value: Any) -> datetime:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError("must be an ISO 8601 date and time") from None
    if not isinstance(value, datetime):
        raise ValueError("must be an ISO 8601 date and time")
    # A time without zone is taken as UTC, the zone every stored time uses.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def choices(enum: type[Enum]) -> str:
    return "must be one of " + ", ".join(str(m.value) for m in enum)
