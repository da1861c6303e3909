"""`postroom accounts …`: the account registry from the command line.

ACCOUNT is an id or a (case-insensitive) name. `add` and `edit` share one set of options (the
`*Opt` aliases below); on `edit` an option left out keeps the stored value. Passwords are read
from stdin (`--password-stdin`, `--incoming-password-stdin`: one line each, outgoing first),
never from the command line, where `ps` and the shell history would see them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer

from postroom.cli import account_options as opt
from postroom.cli.common import (
    EXIT_USAGE,
    cli_actor,
    console,
    emit,
    err_console,
    fail,
    get_container,
    plain,
    read_secrets,
    read_stdin_text,
    translated_errors,
)
from postroom.cli.teams import resolve_team
from postroom.domain.accounts import (
    Account,
    AccountDraft,
    AccountQuery,
    AccountStatus,
    IncomingDraft,
    IncomingProtocol,
    OutgoingDraft,
    Transport,
    default_port,
)
from postroom.errors import InvalidInput
from postroom.wiring import Container

app = typer.Typer(help="Mail accounts: outgoing and incoming servers.", no_args_is_help=True)

LIST_COLUMNS = ["id", "name", "email", "status", "team", "outgoing", "incoming", "default"]


# -- reads ------------------------------------------------------------------------------------


def _team_names(container: Container) -> dict[int, str]:
    return {t.id: t.name for t in container.people.list_teams(cli_actor())}


def _server(part: Any) -> str:
    if part is None:
        return ""
    kind = getattr(part, "transport", None) or part.protocol
    if kind is Transport.SENDMAIL:
        return f"sendmail {part.sendmail_path}"
    text = f"{kind.value} {part.host}:{part.port} {part.security.value}"
    return text if part.verify_certificate else text + " (no cert check)"


def _row(account: Account, teams: dict[int, str]) -> dict[str, Any]:
    defaults = [d for d in ("outgoing", "incoming") if getattr(account, f"is_default_{d}")]
    return {
        "id": account.id,
        "name": account.name,
        "email": account.email,
        "status": account.status.value,
        "team": "" if account.team_id is None else teams.get(account.team_id, account.team_id),
        "outgoing": _server(account.outgoing),
        "incoming": _server(account.incoming),
        "default": "+".join(defaults),
    }


def _show(account: Account, as_json: bool, container: Container) -> None:
    if as_json:
        emit(account, True)
        return
    fields = plain(account)
    fields.pop("warnings")
    team = account.team_id
    fields["team_id"] = (
        "system-wide" if team is None else f"{_team_names(container)[team]} ({team})"
    )
    flat = {k: v for k, v in fields.items() if k not in ("outgoing", "incoming")}
    for part in ("outgoing", "incoming"):
        flat.update({f"{part}.{k}": v for k, v in (fields[part] or {}).items()})
    emit(flat, False)
    for warning in account.warnings:
        err_console.print(f"[yellow]warning:[/] {warning}", highlight=False)


@app.command("list")
def list_cmd(
    status: Annotated[
        str, typer.Option("--status", help="active, inactive, deleted or all.")
    ] = "active",
    team: opt.TeamOpt = None,
    search: Annotated[str, typer.Option("--search", help="In name, e-mail, label.")] = "",
    limit: Annotated[int, typer.Option("--limit", min=1, max=500)] = 50,
    offset: Annotated[int, typer.Option("--offset", min=0)] = 0,
    as_json: opt.JsonOpt = False,
) -> None:
    """List accounts (a page; see --limit and --offset)."""
    with translated_errors():
        if status != "all" and status not in set(AccountStatus):
            raise InvalidInput(fields={"status": "must be active, inactive, deleted or all"})
        container = get_container()
        query = AccountQuery(
            status=None if status == "all" else AccountStatus(status),
            team_id=None if team is None else resolve_team(container, team),
            search=search,
            offset=offset,
            limit=limit,
        )
        page = container.accounts.list(cli_actor(), query)
        if as_json:
            emit(list(page.items), True)
            return
        teams = _team_names(container)
        title = f"Accounts ({status}): {len(page.items)} of {page.total}"
        emit([_row(a, teams) for a in page.items], False, LIST_COLUMNS, title)


@app.command("show")
def show(account: opt.AccountArg, as_json: opt.JsonOpt = False) -> None:
    """Everything about one account (never a password: has_password says whether one is set)."""
    with translated_errors():
        container = get_container()
        _show(container.accounts.find(cli_actor(), account), as_json, container)


# -- add / edit --------------------------------------------------------------------------------


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _incoming_target(imap_host: str | None, pop3_host: str | None) -> dict[str, Any]:
    if imap_host is not None and pop3_host is not None:
        raise InvalidInput(
            fields={"incoming.protocol": "give --imap-host or --pop3-host, not both"}
        )
    if imap_host is not None:
        return {"protocol": IncomingProtocol.IMAP, "host": imap_host}
    if pop3_host is not None:
        return {"protocol": IncomingProtocol.POP3, "host": pop3_host}
    return {}


def _passwords(outgoing: bool, incoming: bool) -> tuple[str | None, str | None]:
    wanted = (("SMTP password", outgoing), ("Incoming password", incoming))
    values = iter(read_secrets(*(prompt for prompt, asked in wanted if asked)))
    return (next(values) if outgoing else None, next(values) if incoming else None)


def _port_follows_security(current: Any, changes: dict[str, Any], protocol: str) -> None:
    """Seed 004: ticking SSL switches 25 to 465. When security changes and no port is given,
    a port that was the conventional one for the old security becomes the new conventional."""
    if current is None or "security" not in changes or "port" in changes:
        return
    if current.port == default_port(protocol, current.security):
        changes["port"] = None


def _check_removal(remove: bool, changes: dict[str, Any], part: str) -> None:
    if remove and changes:
        raise InvalidInput(fields={part: f"--no-{part} cannot be combined with {part} options"})


@app.command("add")
def add(
    name: opt.NameOpt = None,
    email: opt.EmailOpt = None,
    display_name: opt.DisplayNameOpt = None,
    label: opt.LabelOpt = None,
    color: opt.ColorOpt = None,
    description: opt.DescriptionOpt = None,
    team: opt.TeamOpt = None,
    debug: opt.DebugOpt = None,
    transport: opt.TransportOpt = None,
    smtp_host: opt.SmtpHostOpt = None,
    smtp_port: opt.SmtpPortOpt = None,
    security: opt.SecurityOpt = None,
    verify_certificate: opt.VerifyOpt = None,
    auth: opt.AuthOpt = None,
    username: opt.UsernameOpt = None,
    password_stdin: opt.PasswordOpt = False,
    from_address: opt.FromOpt = None,
    reply_to: opt.ReplyToOpt = None,
    send_mode: opt.SendModeOpt = None,
    sendmail_path: opt.SendmailOpt = None,
    imap_host: opt.ImapHostOpt = None,
    pop3_host: opt.Pop3HostOpt = None,
    incoming_port: opt.InPortOpt = None,
    incoming_security: opt.InSecurityOpt = None,
    incoming_verify_certificate: opt.InVerifyOpt = None,
    incoming_username: opt.InUsernameOpt = None,
    incoming_password_stdin: opt.InPasswordOpt = False,
    folder: opt.FolderOpt = None,
    fetch_interval: opt.IntervalOpt = None,
    as_json: opt.JsonOpt = False,
) -> None:
    """Create an account (active). An outgoing part is added with --smtp-host (or --transport
    sendmail), an incoming part with --imap-host or --pop3-host."""
    with translated_errors():
        container = get_container()
        out = _given(
            transport=transport,
            host=smtp_host,
            port=smtp_port,
            security=security,
            verify_certificate=verify_certificate,
            auth_mode=auth,
            username=username,
            from_address=from_address,
            reply_to=reply_to,
            send_mode=send_mode,
            sendmail_path=sendmail_path,
        )
        inc = _incoming_target(imap_host, pop3_host)
        if inc:
            inc |= _given(
                port=incoming_port,
                security=incoming_security,
                verify_certificate=incoming_verify_certificate,
                username=incoming_username or username or email,
                folders=tuple(folder) if folder else None,
                fetch_interval_s=fetch_interval,
            )
        elif (
            any(
                v is not None
                for v in (
                    incoming_port,
                    incoming_security,
                    incoming_username,
                    folder,
                    fetch_interval,
                )
            )
            or incoming_password_stdin
        ):
            raise InvalidInput(fields={"incoming.host": "give --imap-host or --pop3-host"})
        has_out = "host" in out or out.get("transport") is Transport.SENDMAIL
        if out and not has_out:
            raise InvalidInput(
                fields={"outgoing.host": "give --smtp-host (or --transport sendmail)"}
            )
        out_password, in_password = _passwords(password_stdin, incoming_password_stdin)
        draft = AccountDraft(
            name=name or "",
            email=email or "",
            team_id=None if team is None else resolve_team(container, team, "team_id"),
            outgoing=OutgoingDraft(**out, password=out_password) if has_out else None,
            incoming=IncomingDraft(**inc, password=in_password) if inc else None,
            **_given(
                display_name=display_name,
                label=label,
                color=color,
                description=description,
                debug=debug,
            ),
        )
        _show(container.accounts.create(cli_actor(), draft), as_json, container)


@app.command("edit")
def edit(
    account: opt.AccountArg,
    name: opt.NameOpt = None,
    email: opt.EmailOpt = None,
    display_name: opt.DisplayNameOpt = None,
    label: opt.LabelOpt = None,
    color: opt.ColorOpt = None,
    description: opt.DescriptionOpt = None,
    team: opt.TeamOpt = None,
    system_wide: opt.SystemWideOpt = False,
    debug: opt.DebugOpt = None,
    transport: opt.TransportOpt = None,
    smtp_host: opt.SmtpHostOpt = None,
    smtp_port: opt.SmtpPortOpt = None,
    security: opt.SecurityOpt = None,
    verify_certificate: opt.VerifyOpt = None,
    auth: opt.AuthOpt = None,
    username: opt.UsernameOpt = None,
    password_stdin: opt.PasswordOpt = False,
    from_address: opt.FromOpt = None,
    reply_to: opt.ReplyToOpt = None,
    send_mode: opt.SendModeOpt = None,
    sendmail_path: opt.SendmailOpt = None,
    no_outgoing: opt.NoOutgoingOpt = False,
    imap_host: opt.ImapHostOpt = None,
    pop3_host: opt.Pop3HostOpt = None,
    incoming_port: opt.InPortOpt = None,
    incoming_security: opt.InSecurityOpt = None,
    incoming_verify_certificate: opt.InVerifyOpt = None,
    incoming_username: opt.InUsernameOpt = None,
    incoming_password_stdin: opt.InPasswordOpt = False,
    folder: opt.FolderOpt = None,
    fetch_interval: opt.IntervalOpt = None,
    no_incoming: opt.NoIncomingOpt = False,
    as_json: opt.JsonOpt = False,
) -> None:
    """Change an account; options left out keep their stored values (passwords included)."""
    with translated_errors():
        container = get_container()
        actor = cli_actor()
        current = container.accounts.find(actor, account)
        if team is not None and system_wide:
            raise InvalidInput(fields={"team_id": "give --team or --system-wide, not both"})
        changes = _given(
            name=name,
            email=email,
            display_name=display_name,
            label=label,
            color=color,
            description=description,
            debug=debug,
        )
        if team is not None:
            changes["team_id"] = resolve_team(container, team, "team_id")
        elif system_wide:
            changes["team_id"] = None
        out_password, in_password = _passwords(password_stdin, incoming_password_stdin)
        out = _given(
            transport=transport,
            host=smtp_host,
            port=smtp_port,
            security=security,
            verify_certificate=verify_certificate,
            auth_mode=auth,
            username=username,
            password=out_password,
            from_address=from_address,
            reply_to=reply_to,
            send_mode=send_mode,
            sendmail_path=sendmail_path,
        )
        inc = _incoming_target(imap_host, pop3_host) | _given(
            port=incoming_port,
            security=incoming_security,
            verify_certificate=incoming_verify_certificate,
            username=incoming_username,
            password=in_password,
            folders=tuple(folder) if folder else None,
            fetch_interval_s=fetch_interval,
        )
        _check_removal(no_outgoing, out, "outgoing")
        _check_removal(no_incoming, inc, "incoming")
        _port_follows_security(current.outgoing, out, "smtp")
        if current.incoming is not None:
            protocol = inc.get("protocol", current.incoming.protocol).value
            _port_follows_security(current.incoming, inc, protocol)
        if no_outgoing or out:
            changes["outgoing"] = None if no_outgoing else out
        if no_incoming or inc:
            changes["incoming"] = None if no_incoming else inc
        if not changes:
            fail("nothing to change: give at least one option (see --help)", EXIT_USAGE)
        _show(container.accounts.update(actor, current.id, changes), as_json, container)


# -- lifecycle and defaults --------------------------------------------------------------------


def _transition(account: str, action: str, confirm: bool = False) -> None:
    with translated_errors():
        container = get_container()
        actor = cli_actor()
        target = container.accounts.find(actor, account)
        if confirm:
            _confirm_delete(target)
        done = container.accounts.transition(actor, target.id, action)
        console.print(f"account {done.name!r} is now {done.status.value}", highlight=False)


def _confirm_delete(account: Account) -> None:
    if not sys.stdin.isatty():
        fail(
            f"deleting {account.name!r} needs confirmation and stdin is not a terminal: pass --yes",
            EXIT_USAGE,
        )
    default = account.is_default_outgoing or account.is_default_incoming
    typer.confirm(
        f"Delete account {account.name!r} <{account.email}>? It stops sending and fetching"
        f"{', and stops being a default' if default else ''}; its mail and history stay, and"
        " `restore` brings it back.",
        abort=True,
    )


@app.command("activate")
def activate(account: opt.AccountArg) -> None:
    """Make an inactive account active (used for sending and fetched again)."""
    _transition(account, "activate")


@app.command("deactivate")
def deactivate(account: opt.AccountArg) -> None:
    """Stop using an account; everything it fetched stays."""
    _transition(account, "deactivate")


@app.command("delete")
def delete(
    account: opt.AccountArg,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Soft-delete an account (restorable; history kept). Asks first unless --yes."""
    _transition(account, "delete", confirm=not yes)


@app.command("restore")
def restore(account: opt.AccountArg) -> None:
    """Bring a deleted account back (inactive, so nothing starts by surprise)."""
    _transition(account, "restore")


@app.command("set-default")
def set_default(
    account: opt.AccountArg,
    direction: Annotated[
        str, typer.Option("--direction", "-d", help="outgoing or incoming.")
    ] = "outgoing",
) -> None:
    """Make the account the default of its team (or the system default when it has no team);
    the previous default is unset in the same transaction."""
    with translated_errors():
        container = get_container()
        actor = cli_actor()
        target = container.accounts.find(actor, account)
        done = container.accounts.set_default(
            actor, target.id, cast(Literal["outgoing", "incoming"], direction)
        )
        scope = "system-wide" if done.team_id is None else f"team {done.team_id}"
        console.print(
            f"{done.name!r} is the default {direction} account ({scope})", highlight=False
        )


# -- export / import ---------------------------------------------------------------------------


@app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
    with_secrets: Annotated[
        bool,
        typer.Option(
            "--with-secrets", help="Include passwords, encrypted: readable only with this key."
        ),
    ] = False,
    include_deleted: Annotated[bool, typer.Option("--include-deleted")] = False,
) -> None:
    """Export accounts as YAML (passwords left out unless --with-secrets)."""
    with translated_errors():
        text = get_container().portability.export_yaml(
            cli_actor(), with_secrets=with_secrets, include_deleted=include_deleted
        )
        if output is None:
            sys.stdout.write(text)
            return
        # Owner-only from the first byte: the file may hold encrypted passwords.
        try:
            fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            raise InvalidInput(
                fields={"--output": f"cannot be written: {exc.strerror}: {output}"}
            ) from exc
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        err_console.print(f"wrote {output}", highlight=False)


@app.command("import")
def import_cmd(
    file: Annotated[str, typer.Argument(metavar="FILE", help="YAML export, or - for stdin.")],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Check and report; change nothing.")
    ] = False,
    as_json: opt.JsonOpt = False,
) -> None:
    """Import accounts from an export (upsert by name). Every record is checked first; any
    error names the record and field, and then nothing is written."""
    with translated_errors():
        try:
            text = read_stdin_text("FILE") if file == "-" else Path(file).read_text("utf-8")
        except OSError as exc:
            raise InvalidInput(fields={"FILE": f"cannot be read: {exc.strerror}: {file}"}) from exc
        except UnicodeDecodeError as exc:
            raise InvalidInput(fields={"FILE": f"is not UTF-8 text: {file}"}) from exc
        result = get_container().portability.import_yaml(cli_actor(), text, dry_run=dry_run)
        if as_json:
            emit(result, True)
            return
        verb = "would be " if dry_run else ""
        for what in ("created", "updated", "skipped"):
            names = getattr(result, what)
            console.print(f"{verb}{what} {len(names)}: {', '.join(names) or '-'}", highlight=False)
