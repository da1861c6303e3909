"""What every CLI command shares: the container, output as a table or JSON, and failing well."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import datetime
from enum import Enum
from functools import cache
from typing import Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from postroom import errors
from postroom.domain.people import Actor, Role
from postroom.errors import InvalidInput
from postroom.wiring import Container, build, freeze_long_lived

console = Console()
err_console = Console(stderr=True, soft_wrap=True)  # one error, one line (scripts grep it)
F = TypeVar("F", bound=Callable[..., Any])

# Exit codes that mean something to scripts.
EXIT_FAILED = 1  # the operation ran and failed (e.g. a connection check)
EXIT_USAGE = 2  # bad arguments or input
EXIT_NOT_FOUND = 3
EXIT_CONFLICT = 4
EXIT_DENIED = 5
EXIT_SERVER = 6  # a mail server or the database misbehaved
EXIT_INTERNAL = 70  # a bug in Postroom (sysexits EX_SOFTWARE); the message says what


@cache
def get_container() -> Container:
    """The container for this process, built from the environment and migrated; what it holds
    is exempted from garbage collection passes (wiring.freeze_long_lived)."""
    container = build()
    container.migrate()
    freeze_long_lived()
    return container


def cli_actor() -> Actor:
    """Who CLI commands act as: an admin named after the OS user, so the audit trail says who
    ran them (the CLI has the database and the key; it is the operator's tool)."""
    try:
        name = getpass.getuser()
    except (OSError, KeyError):  # no login name in some containers
        name = "unknown"
    return Actor(None, f"cli:{name}", Role.ADMIN)


def read_secrets(*prompts: str) -> list[str]:
    """One secret per prompt: asked without echo on a terminal, else one line of stdin each
    (so a password never has to be on the command line, where `ps` and shell history see it)."""
    values = []
    for prompt in prompts:
        if sys.stdin.isatty():
            value = getpass.getpass(f"{prompt}: ")
        else:
            try:
                value = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
            except UnicodeDecodeError:
                fail(f"{prompt}: stdin is not UTF-8 text", EXIT_USAGE)
        if not _is_utf8(value):
            fail(f"{prompt}: stdin is not UTF-8 text", EXIT_USAGE)
        if not value:
            fail(f"{prompt}: nothing was given on stdin", EXIT_USAGE)
        values.append(value)
    return values


def _is_utf8(text: str) -> bool:
    # Python decodes a non-UTF-8 stdin with surrogateescape under the C locale: such text is
    # refused here, or it breaks much later (encrypting a password, encoding a mail body).
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_stdin_text(where: str) -> str:
    """All of stdin as UTF-8 text; InvalidInput naming `where` when it is not (binary input)."""
    try:
        text = sys.stdin.buffer.read().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            fields={
                where: f"stdin is not UTF-8 text (byte {exc.start} is {exc.object[exc.start]:#04x})"
            }
        ) from exc
    return text


def fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    err_console.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


def plain(value: Any) -> Any:
    """JSON-ready form of dataclasses, enums, datetimes, tuples."""
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(plain(data), indent=2, sort_keys=True) + "\n")


def print_table(
    rows: Sequence[dict[str, Any]], columns: Sequence[str], title: str | None = None
) -> None:
    table = Table(title=title, header_style="bold")
    for col in columns:
        table.add_column(col.replace("_", " "))
    for row in rows:
        table.add_row(
            *("" if row.get(c) is None else escape(str(plain(row.get(c)))) for c in columns)
        )
    console.print(table)


def emit(
    data: Any, as_json: bool, columns: Sequence[str] | None = None, title: str | None = None
) -> None:
    """JSON when asked, else a table (a list) or key/value lines (one record)."""
    if as_json:
        emit_json(data)
        return
    value = plain(data)
    if isinstance(value, list):
        print_table(value, columns or (list(value[0]) if value else []), title)
    elif isinstance(value, dict):
        width = max((len(k) for k in value), default=0)
        for key, item in value.items():
            if isinstance(item, dict | list):
                item = json.dumps(item)
            console.print(
                f"[bold]{key.ljust(width)}[/]  {'' if item is None else escape(str(item))}",
                highlight=False,
            )
    else:
        console.print(str(value))


_CODES: list[tuple[type[errors.PostroomError], int]] = [
    (errors.InvalidInput, EXIT_USAGE),
    (errors.NotFound, EXIT_NOT_FOUND),
    (errors.Conflict, EXIT_CONFLICT),
    (errors.Forbidden, EXIT_DENIED),
    (errors.Unauthenticated, EXIT_DENIED),
    (errors.ProtocolError, EXIT_SERVER),
]


def report_error(exc: errors.PostroomError) -> int:
    """Print `exc` as readable lines (one per field at fault) and return its exit code."""
    if isinstance(exc, errors.InvalidInput) and exc.fields:
        for field, message in exc.fields.items():
            err_console.print(
                f"[bold red]error:[/] {escape(field)}: {escape(message)}", highlight=False
            )
        return EXIT_USAGE
    err_console.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False)
    return next((c for cls, c in _CODES if isinstance(exc, cls)), EXIT_FAILED)


@contextmanager
def translated_errors() -> Iterator[None]:
    """Postroom errors → one readable line and a meaningful exit code; never a stack trace."""
    try:
        yield
    except errors.PostroomError as exc:
        raise typer.Exit(report_error(exc)) from exc
