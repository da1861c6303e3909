"""TLS for the adapters: the one place an ssl.SSLContext is built, and what a handshake showed.

smtplib, poplib and imaplib accept any certificate unless given a context, so every adapter
passes `client_context(...)` explicitly.
"""

from __future__ import annotations

import functools
import ssl
from datetime import UTC, datetime

from cryptography import x509

from postroom.domain.checks import TlsDetails

EXPIRY_WARNING_DAYS = 14


@functools.lru_cache(maxsize=32)
def client_context(*, verify: bool = True, cafile: str | None = None) -> ssl.SSLContext:
    """A client context: system trust store plus `cafile`, hostname checked, unless verify=False
    (then no certificate or hostname check at all — the caller shows a warning).

    Cached per (verify, cafile): loading the system CA bundle costs ~75 ms, more than a whole
    incremental fetch. Callers must not mutate the returned context (it is shared across threads,
    which SSLContext supports for wrapping).
    """
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)
    if cafile:
        context.load_verify_locations(cafile=cafile)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def describe(sock: ssl.SSLSocket, *, now: datetime | None = None) -> TlsDetails:
    """Version, cipher and certificate facts of an established TLS connection.

    Parsed from the DER certificate, because with CERT_NONE getpeercert() returns {}.
    """
    cipher = sock.cipher()
    details = TlsDetails(
        version=sock.version() or "",
        cipher=cipher[0] if cipher else "",
        verified=sock.context.verify_mode != ssl.CERT_NONE,
    )
    der = sock.getpeercert(binary_form=True)
    if not der:
        return details
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        sans = tuple(
            [*san.get_values_for_type(x509.DNSName)]
            + [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        )
    except x509.ExtensionNotFound:
        sans = ()
    not_after = cert.not_valid_after_utc
    days_left = (not_after - (now or datetime.now(UTC))).days
    return TlsDetails(
        version=details.version,
        cipher=details.cipher,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        sans=sans,
        not_after=not_after,
        days_left=days_left,
        verified=details.verified,
    )


def warnings_for(details: TlsDetails) -> list[str]:
    """The warnings a user should see about this TLS connection."""
    found = []
    if not details.verified:
        found.append("certificate verification is off")
    if details.days_left is not None and details.days_left < 0:
        found.append("the certificate has expired")
    elif details.days_left is not None and details.days_left < EXPIRY_WARNING_DAYS:
        found.append(f"certificate expires in {details.days_left} days")
    return found


def summary(details: TlsDetails) -> str:
    """One line for the transcript and the step message."""
    parts = [f"{details.version} {details.cipher}"]
    if details.subject:
        parts.append(f"certificate {details.subject} issued by {details.issuer}")
    if details.not_after is not None:
        parts.append(f"valid until {details.not_after:%Y-%m-%d}")
    return ", ".join(parts)
