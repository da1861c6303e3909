"""Pure rules: validation, header injection, retry policy, settling, routing, stationery."""

from datetime import UTC, datetime, timedelta

import pytest

from postroom.domain.accounts import Account, AccountStatus, Outgoing
from postroom.domain.outbox import (
    Attachment,
    Draft,
    MessageStatus,
    RecipientKind,
    RecipientStatus,
    RetryPolicy,
    address_problem,
    settle,
    validate_draft,
)
from postroom.domain.routing import RouteCandidate, Sender, decide_route
from postroom.errors import InvalidInput
from postroom.services.compose import compose

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fields_of(draft: Draft) -> dict[str, str]:
    with pytest.raises(InvalidInput) as info:
        validate_draft(draft)
    return info.value.fields


@pytest.mark.parametrize(
    "value",
    [
        "a@b.c, d@e.f",
        "alice@example.com <bob@evil.com>",
        "a@b@c.com",
        "ä@x.com",
        "a@-x.com",
        "a..b@x.com",
        "plain",
        "",
    ],
)
def test_bad_addresses_are_refused(value: str) -> None:
    assert address_problem(value) is not None


@pytest.mark.parametrize("value", ["a@b.example", "Name <a@b.example>", "a@exämple.com"])
def test_good_addresses_pass(value: str) -> None:
    assert address_problem(value) is None


@pytest.mark.parametrize(("char", "name"), [("\r", "CR"), ("\n", "LF"), ("\x00", "NUL")])
def test_header_injection_names_the_field(char: str, name: str) -> None:
    problems = fields_of(
        Draft(
            to=(f"a@x.example{char}Bcc: e@evil.example",),
            subject=f"hi{char}Bcc: e@evil.example",
            text="t",
            headers=(("X-Tag", f"v{char}Bcc: e@evil.example"),),
            reply_to=f"r@x.example{char}",
        )
    )
    for key in ("to[0]", "subject", "headers.X-Tag", "reply_to"):
        assert name in problems[key]


def test_reserved_and_malformed_headers_refused() -> None:
    problems = fields_of(
        Draft(to=("a@x.example",), text="t", headers=(("Message-ID", "<x@y>"), ("Bad Name", "v")))
    )
    assert "set by Postroom" in problems["headers.Message-ID"]
    assert "headers.Bad Name" in problems


def test_missing_recipient_body_and_bad_priority() -> None:
    problems = fields_of(Draft(priority=12, send_after=datetime(2026, 1, 1)))
    assert set(problems) >= {"to", "text", "priority", "send_after"}


def test_recipients_dedupe_across_kinds() -> None:
    draft = Draft(to=("A <a@x.example>",), cc=("a@X.example", "c@x.example"), bcc=("b@x.example",))
    assert draft.recipients() == [
        (RecipientKind.TO, "a@x.example"),
        (RecipientKind.CC, "c@x.example"),
        (RecipientKind.BCC, "b@x.example"),
    ]


def test_retry_policy_doubles_caps_and_gives_up() -> None:
    policy = RetryPolicy(initial_s=300, max_s=3600, lifetime_s=5 * 86400)
    assert [policy.delay_s(n) for n in range(1, 7)] == [300, 600, 1200, 2400, 3600, 3600]
    expires = policy.expires_at(T0)
    first = policy.decide(1, T0, expires)
    assert not first.give_up
    assert first.send_again_at == T0 + timedelta(seconds=300)
    near_end = policy.decide(50, expires - timedelta(seconds=10), expires)
    assert near_end.send_again_at == expires  # one last try at the expiry instant
    assert policy.decide(51, expires, expires).give_up


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([RecipientStatus.SENT, RecipientStatus.FAILED], MessageStatus.SENT),
        ([RecipientStatus.SENT, RecipientStatus.DEFERRED], MessageStatus.DEFERRED),
        ([RecipientStatus.FAILED, RecipientStatus.FAILED], MessageStatus.FAILED),
        ([RecipientStatus.PENDING], MessageStatus.DEFERRED),
    ],
)
def test_settle(statuses: list[RecipientStatus], expected: MessageStatus) -> None:
    assert settle(statuses) is expected


def candidate(id: int, **kw: object) -> RouteCandidate:
    values: dict[str, object] = {
        "name": f"acct{id}",
        "status": AccountStatus.ACTIVE,
        "team_id": None,
        "is_default_outgoing": False,
        "has_outgoing": True,
    }
    values.update(kw)
    return RouteCandidate(id=id, **values)  # type: ignore[arg-type]


def test_routing_prefers_work_location_then_team_then_system() -> None:
    accounts = [
        candidate(1, is_default_outgoing=True),
        candidate(2, team_id=7, is_default_outgoing=True),
        candidate(3, work_location_ids=(5,), status=AccountStatus.INACTIVE),
        candidate(4, work_location_ids=(5,)),
    ]
    located = decide_route(Sender(1, "u@x", (7,), 5), accounts)
    assert located.account_id == 4
    assert [s.outcome for s in located.steps] == ["skipped", "chosen"]
    assert "inactive" in located.steps[0].detail
    assert decide_route(Sender(1, "u@x", (7,), None), accounts).account_id == 2
    system = decide_route(Sender(1, "u@x", (), None), accounts)
    assert system.account_id == 1
    assert [s.rule for s in system.steps] == [
        "work_location",
        "team_default",
        "system_default",
    ]


def test_routing_never_uses_unusable_accounts() -> None:
    accounts = [
        candidate(1, is_default_outgoing=True, status=AccountStatus.DELETED),
        candidate(2, team_id=7, is_default_outgoing=True, has_outgoing=False),
    ]
    decision = decide_route(Sender(1, "u@x", (7,)), accounts)
    assert decision.account_id is None
    assert "deleted" in decision.explanation
    assert "no outgoing" in decision.explanation


def test_requested_account_has_no_silent_fallback() -> None:
    accounts = [candidate(1, is_default_outgoing=True), candidate(2, status=AccountStatus.INACTIVE)]
    assert decide_route(Sender(None, "s"), accounts, requested_id=2).account_id is None
    assert decide_route(Sender(None, "s"), accounts, requested_id=9).account_id is None
    assert decide_route(Sender(None, "s"), accounts, requested_id=1).account_id == 1


def test_compose_applies_stationery_and_hides_bcc() -> None:
    account = Account(
        id=1,
        name="Sales",
        email="sales@x.example",
        status=AccountStatus.ACTIVE,
        display_name="Sales Team",
        signature_text="Regards\nSales",
        letterhead_html="<header>ACME</header><main>{{ content }}</main>",
        outgoing=Outgoing(from_address="noreply@x.example"),
    )
    draft = Draft(
        to=("a@y.example",),
        bcc=("hidden@y.example",),
        subject="Héllo",
        text="Body",
        html="<p>Body</p>",
        attachments=(Attachment("a.txt", "text/plain", b"data"),),
        headers=(("X-Tag", "t1"),),
    )
    composed = compose(draft, account)
    raw = composed.raw
    assert composed.envelope_from == "noreply@x.example"
    assert b"hidden@y.example" not in raw
    assert f"Message-ID: {composed.message_id}".encode() in raw
    assert b"\r\n-- \r\nRegards\r\nSales" in raw
    assert b"<main><p>Body</p>" in raw
    assert b"X-Tag: t1" in raw
    assert b"a.txt" in raw
    assert b"Sales Team <noreply@x.example>" in raw
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_compose_encodes_non_ascii_and_idn_correctly() -> None:
    from email import message_from_bytes
    from email.policy import default

    account = Account(
        id=1,
        name="S",
        email="s@x.example",
        status=AccountStatus.ACTIVE,
        display_name="Zoë Sales",
        outgoing=Outgoing(),
    )
    subject = "Grüße " * 20
    draft = Draft(
        to=("Jürgen <j@exämple.com>",),
        subject=subject,
        text="héllo",
        headers=(("X-Tag", "ünï"),),
        attachments=(Attachment("résumé.pdf", "application/pdf", b"%PDF"),),
    )
    raw = compose(draft, account).raw
    assert raw.isascii()
    parsed = message_from_bytes(raw, policy=default)
    assert str(parsed["From"]) == "Zoë Sales <s@x.example>"
    assert str(parsed["To"]) == "Jürgen <j@xn--exmple-cua.com>"
    assert str(parsed["Subject"]) == subject
    assert str(parsed["X-Tag"]) == "ünï"
    assert [a.get_filename() for a in parsed.iter_attachments()] == ["résumé.pdf"]
    assert parsed.get_body(("plain",)).get_content() == "héllo"
    assert draft.recipients() == [(RecipientKind.TO, "j@xn--exmple-cua.com")]


def test_auth_hold_grows_with_the_failing_time() -> None:
    policy = RetryPolicy(initial_s=300, max_s=3600)
    assert policy.auth_hold_until(T0, T0) == T0 + timedelta(seconds=300)
    later = T0 + timedelta(seconds=1200)
    assert policy.auth_hold_until(T0, later) == later + timedelta(seconds=1200)
    much_later = T0 + timedelta(days=1)
    assert policy.auth_hold_until(T0, much_later) == much_later + timedelta(seconds=3600)
