"""The SP's key pair as the verification children receive it.

Its own module, without cryptography: a child unpickles it with every sign-in's work order and
would otherwise import cryptography (about 6 MB of private memory per child) for nothing: it
hands the PEM to libxmlsec.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SpKeys:
    """The SP's key pair as PEM and as files (pysaml2 reads files). Here, not in ``sp``: the
    verification child unpickles it and must not import pysaml2's wiring to do so."""

    key_pem: bytes
    cert_pem: bytes
    key_path: str
    cert_path: str
