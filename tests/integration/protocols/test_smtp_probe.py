"""probe_smtp and send_test_message against aiosmtpd and scripted hostile peers."""

from __future__ import annotations

import base64
import json
import socket

import pytest

from postroom.domain.accounts import Security
from postroom.domain.checks import CheckResult, ErrorClass, Field, StepOutcome
from postroom.protocols.endpoints import NetworkPolicy
from postroom.protocols.smtp import probe_smtp, send_test_message
from postroom.testing.peers import DROP, SILENT, Endless, Script, ScriptedPeer, SmtpPeer
from postroom.testing.tls import CertKind, LocalCA
from tests.integration.protocols.support import PASSWORD, USER, MakeEndpoint

SENDER, RECIPIENT = "sender@example.test", "rcpt@example.test"
MODES = [("plain", Security.NONE), ("starttls", Security.STARTTLS), ("ssl", Security.SSL)]


def probe(
    endpoint_port: int,
    make_endpoint: MakeEndpoint,
    policy: NetworkPolicy,
    security: Security = Security.NONE,
    deadline_s: float = 10.0,
    **kw: object,
) -> CheckResult:
    endpoint = make_endpoint(endpoint_port, security, **kw)
    return probe_smtp(
        endpoint, policy=policy, sender=SENDER, recipient=RECIPIENT, deadline_s=deadline_s
    )


def step_names(result: CheckResult) -> list[str]:
    return [s.name for s in result.steps if s.outcome is not StepOutcome.SKIPPED]


@pytest.mark.parametrize(("mode", "security"), MODES)
def test_probe_succeeds_and_sends_nothing(
    mode: str, security: Security, ca: LocalCA, make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer(mode=mode, cert=ca.server_cert(), users={USER: PASSWORD}) as peer:
        result = probe(peer.port, make_endpoint, policy, security, auth=True)
        assert result.ok, result.error_message
        assert result.error_class is None
        assert "auth" in step_names(result)
        assert step_names(result)[-1] == "data"
        assert peer.messages == []  # the dry run stops at 354
    if security is Security.NONE:
        assert result.tls is None
        assert "the connection is not encrypted" in result.warnings
    else:
        assert result.tls is not None
        assert result.tls.version.startswith("TLS")
        assert "127.0.0.1" in result.tls.sans
        assert result.tls.days_left is not None
        assert result.tls.days_left > 14
        assert result.warnings == ()
    ehlo = next(s for s in result.steps if s.name == "ehlo")
    assert "8BITMIME" in ehlo.message


def test_send_test_message_delivers(
    ca: LocalCA, make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer(mode="starttls", cert=ca.server_cert(), users={USER: PASSWORD}) as peer:
        endpoint = make_endpoint(peer.port, Security.STARTTLS, auth=True)
        result = send_test_message(
            endpoint, policy=policy, sender=SENDER, recipient=RECIPIENT, subject="Hello test"
        )
        assert result.ok, result.error_message
        (message,) = peer.messages
    assert message.mail_from == SENDER
    assert message.rcpt_tos == (RECIPIENT,)
    assert b"Subject: Hello test" in message.raw
    assert "[message data:" in json.dumps(result.to_dict())


@pytest.mark.parametrize(
    ("mode", "security"), [("ssl", Security.SSL), ("starttls", Security.STARTTLS)]
)
def test_untrusted_certificate_is_tls_verify(
    mode: str, security: Security, ca: LocalCA, make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer(mode=mode, cert=ca.server_cert(CertKind.UNTRUSTED)) as peer:
        refused = probe(peer.port, make_endpoint, policy, security)
        accepted = probe(peer.port, make_endpoint, policy, security, verify_certificate=False)
    assert refused.error_class is ErrorClass.TLS_VERIFY
    assert refused.field is Field.SECURITY
    assert "self-signed or from an unknown authority" in refused.hint
    assert accepted.ok, accepted.error_message
    assert "certificate verification is off" in accepted.warnings
    assert accepted.tls is not None
    assert not accepted.tls.verified
    assert accepted.tls.subject  # details even without verification (parsed from DER)


def test_expired_and_wrong_name_certificates(
    ca: LocalCA, make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer(mode="ssl", cert=ca.server_cert(CertKind.EXPIRED)) as peer:
        expired = probe(peer.port, make_endpoint, policy, Security.SSL)
    with SmtpPeer(mode="ssl", cert=ca.server_cert(CertKind.WRONG_NAME)) as peer:
        wrong = probe(peer.port, make_endpoint, policy, Security.SSL)
    assert expired.error_class is ErrorClass.TLS_VERIFY
    assert "expired" in expired.hint
    assert wrong.error_class is ErrorClass.TLS_VERIFY
    assert "other names" in wrong.hint


def test_certificate_expiring_soon_warns(
    ca: LocalCA, make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer(mode="ssl", cert=ca.server_cert(expires_in_days=5)) as peer:
        result = probe(peer.port, make_endpoint, policy, Security.SSL)
    assert result.ok
    assert "certificate expires in 5 days" in result.warnings


def test_wrong_password_is_auth_failed_at_password(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer(users={USER: "the-right-one"}) as peer:
        result = probe(peer.port, make_endpoint, policy, auth=True)
    assert result.error_class is ErrorClass.AUTH_FAILED
    assert result.field is Field.PASSWORD
    assert result.steps[-1].name == "auth"


def test_closed_port_is_refused_at_port(make_endpoint: MakeEndpoint, policy: NetworkPolicy) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
    result = probe(port, make_endpoint, policy)
    assert result.error_class is ErrorClass.REFUSED
    assert result.field is Field.PORT


def test_unresolvable_host_is_dns_at_host(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    result = probe(25, make_endpoint, policy, host="no-such-host.invalid")
    assert result.error_class is ErrorClass.DNS
    assert result.field is Field.HOST


def test_guard_refuses_loopback_without_allow_list(make_endpoint: MakeEndpoint) -> None:
    with SmtpPeer() as peer:
        result = probe(peer.port, make_endpoint, NetworkPolicy())
    assert result.error_class is ErrorClass.DESTINATION_REFUSED
    assert result.field is Field.HOST
    assert "not allowed" in result.error_message


def test_starttls_against_implicit_tls_port_says_so(
    ca: LocalCA, make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer(mode="ssl", cert=ca.server_cert()) as peer:
        result = probe(peer.port, make_endpoint, policy, Security.STARTTLS, timeout_s=0.5)
    assert result.error_class is ErrorClass.TIMEOUT
    assert "if it expects implicit TLS, choose SSL" in result.hint


def test_ssl_against_plain_port_says_so(make_endpoint: MakeEndpoint, policy: NetworkPolicy) -> None:
    with SmtpPeer(mode="plain") as peer:
        result = probe(peer.port, make_endpoint, policy, Security.SSL)
    assert result.error_class is ErrorClass.TLS_HANDSHAKE
    assert result.field is Field.SECURITY
    assert "answers in plain text: choose STARTTLS (or none), not SSL" in result.hint


def test_starttls_not_offered_is_starttls_unavailable(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer(mode="plain") as peer:
        result = probe(peer.port, make_endpoint, policy, Security.STARTTLS)
    assert result.error_class is ErrorClass.STARTTLS_UNAVAILABLE
    assert result.field is Field.SECURITY
    assert [s.name for s in result.steps][-1] == "starttls"  # never went on in plaintext


def test_recipient_refused_is_recipient_rejected(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer(refuse={RECIPIENT: "550 5.1.1 No such user here"}) as peer:
        result = probe(peer.port, make_endpoint, policy)
    assert result.error_class is ErrorClass.RECIPIENT_REJECTED
    assert "550 5.1.1" in result.error_message


def test_black_holed_peer_times_out_within_the_deadline(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with ScriptedPeer(Script(greeting=SILENT)) as peer:
        # The per-read timeout (60 s) is far longer than the deadline: only the deadline ends it.
        result = probe(peer.port, make_endpoint, policy, timeout_s=60.0, deadline_s=0.5)
    assert result.error_class is ErrorClass.TIMEOUT
    assert sum(s.elapsed_ms for s in result.steps) < 60_000


HOSTILE = [
    (Script(greeting=b"HTTP/1.1 400 Bad Request\r\n"), ErrorClass.PROTOCOL_ERROR, "not SMTP"),
    (Script(greeting=b"421 4.3.2 too busy, go away\r\n"), ErrorClass.UNEXPECTED_REPLY, "421"),
    (Script(greeting=DROP), ErrorClass.PROTOCOL_ERROR, "closed the connection"),
    (
        Script(replies=((b"EHLO", Endless(b"250-more and more\r\n")),)),
        ErrorClass.PROTOCOL_ERROR,
        "more than 1000 reply lines",
    ),
    (
        Script(greeting=b"220 " + b"x" * 1_100_000 + b"\r\n"),
        ErrorClass.PROTOCOL_ERROR,
        "longer than 8192 bytes",
    ),
    (
        Script(replies=((b"MAIL", b"553 5.7.1 sender not allowed\r\n"),)),
        ErrorClass.SENDER_REJECTED,
        "553",
    ),
    (
        Script(replies=((b"RCPT", b"550 5.7.1 relaying denied\r\n"),)),
        ErrorClass.RECIPIENT_REJECTED,
        "relaying denied",
    ),
]


@pytest.mark.parametrize(("script", "expected", "said"), HOSTILE)
def test_hostile_peers(
    script: Script,
    expected: ErrorClass,
    said: str,
    make_endpoint: MakeEndpoint,
    policy: NetworkPolicy,
) -> None:
    with ScriptedPeer(script) as peer:
        result = probe(peer.port, make_endpoint, policy)
    assert result.error_class is expected
    assert said in result.error_message + result.hint


def test_starttls_advertised_then_refused(
    make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    script = Script(
        replies=(
            (b"EHLO", b"250-scripted.test\r\n250 STARTTLS\r\n"),
            (b"STARTTLS", b"454 4.7.0 TLS not available due to temporary reason\r\n"),
        )
    )
    with ScriptedPeer(script) as peer:
        result = probe(peer.port, make_endpoint, policy, Security.STARTTLS)
        assert not any(line.upper().startswith(b"MAIL") for line in peer.lines)
    assert result.error_class is ErrorClass.STARTTLS_UNAVAILABLE
    assert "454" in result.error_message


@pytest.mark.parametrize("exclude", [(), ("PLAIN",)], ids=["plain", "login"])
def test_no_password_reaches_the_transcript(
    exclude: tuple[str, ...], ca: LocalCA, make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    with SmtpPeer(
        mode="starttls", cert=ca.server_cert(), users={USER: PASSWORD}, auth_exclude=exclude
    ) as peer:
        endpoint = make_endpoint(peer.port, Security.STARTTLS, auth=True)
        probed = probe_smtp(endpoint, policy=policy, sender=SENDER, recipient=RECIPIENT)
        sent = send_test_message(endpoint, policy=policy, sender=SENDER, recipient=RECIPIENT)
    assert probed.ok
    assert sent.ok
    mechanism = "LOGIN" if exclude else "PLAIN"
    assert any(f"AUTH {mechanism} ***" == e.text for e in probed.transcript)
    stored = json.dumps([probed.to_dict(), sent.to_dict()])
    forms = [
        PASSWORD,
        base64.b64encode(PASSWORD.encode()).decode(),
        base64.b64encode(f"\0{USER}\0{PASSWORD}".encode()).decode(),
    ]
    for form in forms:
        assert form not in stored


def test_scripted_starttls_upgrade_with_untrusted_certificate(
    ca: LocalCA, make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    script = Script(
        replies=(
            (b"EHLO", b"250-scripted.test\r\n250 STARTTLS\r\n"),
            (b"STARTTLS", b"220 2.0.0 Ready to start TLS\r\n"),
        ),
        tls=ca.server_cert(CertKind.UNTRUSTED).server_context(),
    )
    with ScriptedPeer(script) as peer:
        result = probe(peer.port, make_endpoint, policy, Security.STARTTLS)
    assert result.error_class is ErrorClass.TLS_VERIFY
    assert result.steps[-1].name == "starttls"


def test_plaintext_behind_the_starttls_reply_is_refused(
    ca: LocalCA, make_endpoint: MakeEndpoint, policy: NetworkPolicy
) -> None:
    # CVE-2011-0411: a reply sent in plaintext with the 220 must not pass for one sent over TLS.
    script = Script(
        replies=(
            (b"EHLO", b"250-scripted.test\r\n250 STARTTLS\r\n"),
            (b"STARTTLS", b"220 2.0.0 Ready to start TLS\r\n250-injected\r\n250 AUTH PLAIN\r\n"),
        ),
        tls=ca.server_cert().server_context(),
    )
    with ScriptedPeer(script) as peer:
        result = probe(peer.port, make_endpoint, policy, Security.STARTTLS)
    assert result.error_class is ErrorClass.PROTOCOL_ERROR
    assert "more than its reply to STARTTLS" in result.error_message
    assert not result.ok
