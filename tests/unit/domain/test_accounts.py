"""Pure account rules: lifecycle, port defaults, validation, warnings."""

import pytest

from postroom.domain.accounts import (
    Account,
    AccountDraft,
    AccountStatus,
    AfterImport,
    AuthMode,
    Incoming,
    IncomingDraft,
    IncomingProtocol,
    Outgoing,
    OutgoingDraft,
    Security,
    Transport,
    account_warnings,
    default_port,
    next_status,
    validate_draft,
)

S = AccountStatus


@pytest.mark.parametrize(
    ("current", "action", "expected"),
    [
        (S.ACTIVE, "deactivate", S.INACTIVE),
        (S.INACTIVE, "activate", S.ACTIVE),
        (S.ACTIVE, "delete", S.DELETED),
        (S.INACTIVE, "delete", S.DELETED),
        (S.DELETED, "restore", S.INACTIVE),
        (S.ACTIVE, "activate", None),
        (S.DELETED, "activate", None),
        (S.DELETED, "delete", None),
        (S.ACTIVE, "restore", None),
    ],
)
def test_lifecycle(current: AccountStatus, action: str, expected: AccountStatus | None) -> None:
    assert next_status(current, action) == expected


def test_ports_follow_security() -> None:
    assert default_port("smtp", Security.NONE) == 25
    assert default_port("smtp", Security.SSL) == 465
    assert default_port("smtp", Security.STARTTLS) == 587
    assert default_port("imap", Security.SSL) == 993
    assert default_port("imap", Security.STARTTLS) == 143
    assert default_port("pop3", Security.SSL) == 995
    assert default_port("pop3", Security.NONE) == 110


def _smtp(**kw: object) -> OutgoingDraft:
    base: dict[str, object] = {"host": "smtp.example.com", "username": "u"}
    base.update(kw)
    return OutgoingDraft(**base)  # type: ignore[arg-type]


def test_valid_draft_has_no_errors() -> None:
    draft = AccountDraft(
        name="Sales",
        email="sales@example.com",
        color="#1f6feb",
        outgoing=_smtp(),
        incoming=IncomingDraft(host="imap.example.com", username="u"),
    )
    assert validate_draft(draft) == {}


def test_errors_name_every_field_at_fault() -> None:
    draft = AccountDraft(
        name=" ",
        email="not-an-address",
        color="blue",
        display_name="A\r\nBcc: x@y.z",
        outgoing=OutgoingDraft(host="", port=70000, username="", from_address="nope", timeout_s=0),
        incoming=IncomingDraft(host="bad host", username="", folders=(), fetch_interval_s=1),
    )
    errors = validate_draft(draft)
    assert set(errors) >= {
        "name",
        "email",
        "color",
        "display_name",
        "outgoing.host",
        "outgoing.port",
        "outgoing.username",
        "outgoing.from_address",
        "outgoing.timeout_s",
        "incoming.host",
        "incoming.username",
        "incoming.folders",
        "incoming.fetch_interval_s",
    }
    assert "after @" in errors["outgoing.host"]


def test_header_injection_in_part_fields_is_refused() -> None:
    errors = validate_draft(
        AccountDraft(name="a", email="a@b.cd", outgoing=_smtp(helo_name="x\nRCPT TO:<a@b>"))
    )
    assert errors == {"outgoing.helo_name": "must not contain line breaks or NUL"}


def test_sendmail_needs_no_host_but_an_absolute_path() -> None:
    ok = AccountDraft(
        name="a",
        email="a@b.cd",
        outgoing=OutgoingDraft(transport=Transport.SENDMAIL, auth_mode=AuthMode.NONE),
    )
    assert validate_draft(ok) == {}
    bad = AccountDraft(
        name="a",
        email="a@b.cd",
        outgoing=OutgoingDraft(transport=Transport.SENDMAIL, sendmail_path="sendmail"),
    )
    assert validate_draft(bad) == {"outgoing.sendmail_path": "must be an absolute path"}


def test_rate_limit_needs_both_parts() -> None:
    errors = validate_draft(
        AccountDraft(name="a", email="a@b.cd", outgoing=_smtp(rate_limit_count=5))
    )
    assert "outgoing.rate_limit_count" in errors
    errors = validate_draft(
        AccountDraft(
            name="a", email="a@b.cd", outgoing=_smtp(rate_limit_count=0, rate_limit_period_s=60)
        )
    )
    assert errors["outgoing.rate_limit_count"] == "count and period must be positive"


def test_pop3_cannot_move_or_mark_seen() -> None:
    draft = AccountDraft(
        name="a",
        email="a@b.cd",
        incoming=IncomingDraft(
            protocol=IncomingProtocol.POP3,
            host="pop.b.cd",
            username="u",
            after_import=AfterImport.MOVE,
        ),
    )
    assert validate_draft(draft) == {
        "incoming.after_import": "POP3 can only keep or delete messages"
    }


def test_drafts_mask_passwords_in_repr() -> None:
    assert "hunter2" not in repr(_smtp(password="hunter2"))
    assert "hunter2" not in repr(IncomingDraft(password="hunter2"))
    assert "hunter2" not in repr(
        AccountDraft(name="a", email="a@b.cd", outgoing=_smtp(password="hunter2"))
    )


def test_fast_mode_and_plaintext_warnings() -> None:
    account = Account(
        id=1,
        name="a",
        email="a@b.cd",
        status=S.ACTIVE,
        outgoing=Outgoing(host="h", verify_certificate=False),
        incoming=Incoming(host="h", security=Security.NONE),
    )
    warnings = account_warnings(account)
    assert any("outgoing: certificate verification is off" in w for w in warnings)
    assert any("incoming: the password is sent without encryption" in w for w in warnings)
    assert (
        account_warnings(
            Account(id=2, name="b", email="b@b.cd", status=S.ACTIVE, outgoing=Outgoing(host="h"))
        )
        == ()
    )
