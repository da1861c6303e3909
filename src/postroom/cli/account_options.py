"""The options `postroom accounts add` and `edit` share, defined once.

Every option defaults to None ("not given"), so `edit` can tell a change from a value left out.
"""

from __future__ import annotations

from typing import Annotated

import typer

from postroom.domain.accounts import AuthMode, Security, SendMode, Transport

AccountArg = Annotated[str, typer.Argument(metavar="ACCOUNT", help="Account id or name.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON.")]
OUT_PANEL = "Outgoing server"
IN_PANEL = "Incoming server"
NameOpt = Annotated[str | None, typer.Option("--name", help="Unique name.")]
EmailOpt = Annotated[str | None, typer.Option("--email", help="The account's address.")]
DisplayNameOpt = Annotated[str | None, typer.Option("--display-name")]
LabelOpt = Annotated[str | None, typer.Option("--label")]
ColorOpt = Annotated[str | None, typer.Option("--color", help="Hex colour like #1f6feb.")]
DescriptionOpt = Annotated[str | None, typer.Option("--description")]
TeamOpt = Annotated[str | None, typer.Option("--team", help="Team id or name.")]
SystemWideOpt = Annotated[
    bool, typer.Option("--system-wide", help="Belongs to no team (admins manage it).")
]
DebugOpt = Annotated[bool | None, typer.Option("--debug/--no-debug", help="Keep transcripts.")]
TransportOpt = Annotated[Transport | None, typer.Option("--transport", rich_help_panel=OUT_PANEL)]
SmtpHostOpt = Annotated[str | None, typer.Option("--smtp-host", rich_help_panel=OUT_PANEL)]
SmtpPortOpt = Annotated[
    int | None,
    typer.Option(
        "--smtp-port", help="Default: 25 / 587 / 465 by security.", rich_help_panel=OUT_PANEL
    ),
]
SecurityOpt = Annotated[Security | None, typer.Option("--security", rich_help_panel=OUT_PANEL)]
VerifyOpt = Annotated[
    bool | None,
    typer.Option(
        "--verify-certificate/--no-verify-certificate",
        help="Off is 'fast mode': the connection can be intercepted.",
        rich_help_panel=OUT_PANEL,
    ),
]
AuthOpt = Annotated[AuthMode | None, typer.Option("--auth", rich_help_panel=OUT_PANEL)]
UsernameOpt = Annotated[str | None, typer.Option("--username", rich_help_panel=OUT_PANEL)]
PasswordOpt = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the SMTP password.", rich_help_panel=OUT_PANEL),
]
FromOpt = Annotated[str | None, typer.Option("--from-address", rich_help_panel=OUT_PANEL)]
ReplyToOpt = Annotated[str | None, typer.Option("--reply-to", rich_help_panel=OUT_PANEL)]
SendModeOpt = Annotated[SendMode | None, typer.Option("--send-mode", rich_help_panel=OUT_PANEL)]
SendmailOpt = Annotated[str | None, typer.Option("--sendmail-path", rich_help_panel=OUT_PANEL)]
NoOutgoingOpt = Annotated[
    bool, typer.Option("--no-outgoing", help="Remove the outgoing part.", rich_help_panel=OUT_PANEL)
]
ImapHostOpt = Annotated[str | None, typer.Option("--imap-host", rich_help_panel=IN_PANEL)]
Pop3HostOpt = Annotated[str | None, typer.Option("--pop3-host", rich_help_panel=IN_PANEL)]
InPortOpt = Annotated[
    int | None,
    typer.Option("--incoming-port", help="Default: 143/993, 110/995.", rich_help_panel=IN_PANEL),
]
InSecurityOpt = Annotated[
    Security | None, typer.Option("--incoming-security", rich_help_panel=IN_PANEL)
]
InVerifyOpt = Annotated[
    bool | None,
    typer.Option(
        "--incoming-verify-certificate/--no-incoming-verify-certificate", rich_help_panel=IN_PANEL
    ),
]
InUsernameOpt = Annotated[
    str | None,
    typer.Option(
        "--incoming-username",
        help="Default: --username, else the e-mail.",
        rich_help_panel=IN_PANEL,
    ),
]
InPasswordOpt = Annotated[
    bool,
    typer.Option(
        "--incoming-password-stdin", help="Read the IMAP/POP3 password.", rich_help_panel=IN_PANEL
    ),
]
FolderOpt = Annotated[
    list[str] | None,
    typer.Option("--folder", help="IMAP folder; repeat.", rich_help_panel=IN_PANEL),
]
IntervalOpt = Annotated[
    int | None, typer.Option("--fetch-interval", help="Seconds.", rich_help_panel=IN_PANEL)
]
NoIncomingOpt = Annotated[
    bool, typer.Option("--no-incoming", help="Remove the incoming part.", rich_help_panel=IN_PANEL)
]
