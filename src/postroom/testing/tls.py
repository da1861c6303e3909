"""A throwaway certificate authority for tests, so TLS verification stays ON in the suite.

    ca = LocalCA.create(tmp_path)
    cert = ca.server_cert()                      # for 127.0.0.1 and localhost, trusted via ca.cafile
    context = cert.server_context()              # an ssl server context for a test peer
    Endpoint(..., cafile=ca.cafile)              # the client trusts the test CA

Variants: CertKind.EXPIRED, CertKind.UNTRUSTED (signed by a CA no client knows — what a
self-signed certificate looks like to a client), CertKind.WRONG_NAME, and `expires_in_days`
for the expiry warning. Files (cert chain + key) are written for Postfix/Dovecot fixtures too.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import trustme

LOCAL_NAMES: tuple[str, ...] = ("127.0.0.1", "localhost", "::1")


class CertKind(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    UNTRUSTED = "untrusted"
    WRONG_NAME = "wrong_name"


@dataclass(frozen=True)
class ServerCert:
    certfile: str  # leaf certificate followed by the chain, PEM
    keyfile: str  # private key, PEM

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.certfile, self.keyfile)
        return context


@dataclass(frozen=True)
class LocalCA:
    directory: Path
    ca: trustme.CA
    cafile: str

    @classmethod
    def create(cls, directory: Path) -> LocalCA:
        directory.mkdir(parents=True, exist_ok=True)
        ca = trustme.CA(organization_name="Postroom Test CA")
        cafile = directory / "test-ca.pem"
        ca.cert_pem.write_to_path(str(cafile))
        return cls(directory, ca, str(cafile))

    def server_cert(
        self, kind: CertKind = CertKind.VALID, *, expires_in_days: int | None = None
    ) -> ServerCert:
        """Issue a server certificate of `kind` and write it under the CA's directory."""
        now = datetime.now(UTC)
        issuer, names = self.ca, LOCAL_NAMES
        not_before, not_after = None, None
        if kind is CertKind.UNTRUSTED:
            issuer = trustme.CA(organization_name="Unknown CA")
        elif kind is CertKind.WRONG_NAME:
            names = ("mail.example.test",)
        elif kind is CertKind.EXPIRED:
            not_before, not_after = now - timedelta(days=30), now - timedelta(days=1)
        if expires_in_days is not None:
            # A few hours past the day boundary, so "days left" is exactly expires_in_days.
            not_after = now + timedelta(days=expires_in_days, hours=6)
        cert = issuer.issue_cert(*names, not_before=not_before, not_after=not_after)
        label = f"{kind.value}-{expires_in_days}" if expires_in_days is not None else kind.value
        certfile = self.directory / f"server-{label}.crt"
        keyfile = self.directory / f"server-{label}.key"
        with certfile.open("wb") as out:
            for blob in cert.cert_chain_pems:
                out.write(blob.bytes())
        cert.private_key_pem.write_to_path(str(keyfile))
        return ServerCert(str(certfile), str(keyfile))
