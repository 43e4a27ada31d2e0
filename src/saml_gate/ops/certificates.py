"""How long a certificate has left: the start-up and daily warnings, ``/saml/status``, the
metrics and ``saml-gate check`` all read it here (cryptography only: no HTTP client)."""

from __future__ import annotations

from typing import Final

from cryptography import x509

#: A certificate that expires within this many days is warned about.
EXPIRY_WARNING_DAYS: Final = 30


def certificate_days_left(pem: bytes, now: float) -> tuple[str, float]:
    """(the certificate's subject, days until it expires; negative once it has)."""
    cert = x509.load_pem_x509_certificate(pem)
    subject = cert.subject.rfc4514_string() or "(no subject)"
    return subject, (cert.not_valid_after_utc.timestamp() - now) / 86400
