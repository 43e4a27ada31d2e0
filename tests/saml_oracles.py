"""Independent SAML service providers used as test oracles: pysaml2 and python3-saml.

Test-only. pysaml2 runs with its default ``xmlsec1`` backend (the Debian ``xmlsec1`` package);
python3-saml runs in strict mode on python-xmlsec. Both are configured as strictly as they allow
for the signing mode of the message under test, and both get the same bytes the gate gets.
Neither takes a clock argument, so :func:`frozen_clock` freezes the process clock around them.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from saml_gate.saml.keys import KeyPair
from tests.support import ACS_URL, ENTITY_ID


def require_xmlsec1() -> None:
    import pytest

    if shutil.which("xmlsec1") is None:
        pytest.skip(
            "the xmlsec1 program is not installed (Debian/Ubuntu: apt-get install xmlsec1); "
            "pysaml2's default crypto backend, the oracle of these tests, needs it"
        )


def require_python3_saml() -> None:
    import pytest

    pytest.importorskip(
        "onelogin.saml2",
        reason="python3-saml is not installed: pip install -e '.[test]' (or python3-saml)",
    )


@contextlib.contextmanager
def frozen_clock(now: datetime) -> Iterator[None]:
    """Freeze time.time, datetime.now & co. (the oracles read the real clock)."""
    from freezegun import freeze_time

    with freeze_time(now):
        yield


@dataclass(frozen=True)
class Verdict:
    """What an SP did with a message: accepted it (and read this NameID), or refused it."""

    accepted: bool
    detail: str

    @classmethod
    def of(cls, run: Callable[[], str]) -> Verdict:
        try:
            return cls(True, run())
        except Exception as exc:  # every oracle refuses with its own exception types
            return cls(False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}")

    def __str__(self) -> str:
        return f"accept ({self.detail})" if self.accepted else f"reject ({self.detail})"


# ------------------------------------------------------------------------------------ pysaml2
@dataclass(frozen=True)
class KeyFiles:
    """PEM files for pysaml2, which only takes paths."""

    sp_key: Path
    sp_cert: Path
    idp_key: Path
    idp_cert: Path

    @classmethod
    def write(cls, folder: Path, sp: KeyPair, idp: KeyPair) -> KeyFiles:
        files = cls(folder / "sp.key", folder / "sp.crt", folder / "idp.key", folder / "idp.crt")
        files.sp_key.write_bytes(sp.key_pem)
        files.sp_cert.write_bytes(sp.cert_pem)
        files.idp_key.write_bytes(idp.key_pem)
        files.idp_cert.write_bytes(idp.cert_pem)
        return files


def pysaml2_sp_config(
    metadata: str | None,
    files: KeyFiles,
    *,
    entity_id: str = ENTITY_ID,
    acs_url: str = ACS_URL,
    **sp_flags: bool,
) -> dict[str, Any]:
    from saml2 import BINDING_HTTP_POST

    return {
        "entityid": entity_id,
        "key_file": str(files.sp_key),
        "cert_file": str(files.sp_cert),
        "encryption_keypairs": [{"key_file": str(files.sp_key), "cert_file": str(files.sp_cert)}],
        "metadata": {"inline": [metadata] if metadata else []},
        "allow_unknown_attributes": True,
        "accepted_time_diff": 90,  # the gate's default clock_skew
        "service": {
            "sp": {
                "endpoints": {"assertion_consumer_service": [(acs_url, BINDING_HTTP_POST)]},
                "allow_unsolicited": False,
                **sp_flags,
            }
        },
    }


def pysaml2_sp(
    metadata: str,
    files: KeyFiles,
    *,
    want_response_signed: bool,
    want_assertions_signed: bool,
    **options: Any,
) -> Any:
    """A pysaml2 SP (``Saml2Client``) that requires the signatures the flags name.

    With neither flag, ``want_assertions_or_response_signed`` is set: at least one signature,
    the gate's own minimum.
    """
    from saml2.client import Saml2Client
    from saml2.config import SPConfig

    flags = (want_response_signed, want_assertions_signed)
    either = not any(flags)
    config = SPConfig().load(
        pysaml2_sp_config(
            metadata,
            files,
            want_response_signed=want_response_signed,
            want_assertions_signed=want_assertions_signed,
            want_assertions_or_response_signed=either,
            **options,
        )
    )
    client = Saml2Client(config=config)
    assert (client.want_response_signed, client.want_assertions_signed) == flags
    return client


class PySaml2Refused(Exception):
    """pysaml2 returned instead of raising, but without a verified assertion."""


def run_pysaml2(
    client: Any, saml_response: str, request_id: str, *, entity_id: str = ENTITY_ID
) -> Any:
    """The parsed ``AuthnResponse``; raises on refusal, including a refusal pysaml2 *returns*."""
    from saml2 import BINDING_HTTP_POST

    resp = client.parse_authn_request_response(
        saml_response,
        BINDING_HTTP_POST,
        outstanding={request_id: "/"},
        conv_info={"entity_id": entity_id},  # without it pysaml2 skips the Recipient check
    )
    # On some failures pysaml2 returns a response with assertion=None (pysaml2-notes §2(b)1).
    if resp is None or resp.assertion is None or resp.name_id is None:
        raise PySaml2Refused(f"pysaml2 returned {resp!r} without a verified assertion")
    return resp


# ------------------------------------------------------------------------------------ python3-saml
def python3_saml_settings(
    *,
    idp_entity_id: str,
    idp_cert_pem: bytes,
    sp_keys: KeyPair,
    want_messages_signed: bool,
    want_assertions_signed: bool,
    entity_id: str = ENTITY_ID,
    acs_url: str = ACS_URL,
) -> Any:
    """python3-saml settings, strict mode, everything it can check switched on."""
    from onelogin.saml2.settings import OneLogin_Saml2_Settings

    def body(pem: bytes) -> str:
        return "".join(line for line in pem.decode().splitlines() if "-----" not in line)

    return OneLogin_Saml2_Settings(
        {
            "strict": True,
            "debug": False,
            "sp": {
                "entityId": entity_id,
                "assertionConsumerService": {
                    "url": acs_url,
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST",
                },
                "x509cert": body(sp_keys.cert_pem),
                "privateKey": sp_keys.key_pem.decode(),
            },
            "idp": {
                "entityId": idp_entity_id,
                "singleSignOnService": {
                    "url": "https://idp.example.test/app/sso/saml",
                    "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
                },
                "x509cert": body(idp_cert_pem),
            },
            "security": {
                "wantMessagesSigned": want_messages_signed,
                "wantAssertionsSigned": want_assertions_signed,
                "wantNameId": True,
                "wantAttributeStatement": False,
                "requestedAuthnContext": False,
                "rejectDeprecatedAlgorithm": True,
                "rejectUnsolicitedResponsesWithInResponseTo": True,
                "allowRepeatAttributeName": False,
                "allowSingleLabelDomains": True,
            },
        }
    )


def run_python3_saml(
    settings: Any, saml_response: str, request_id: str, *, acs_url: str = ACS_URL
) -> str:
    """The NameID python3-saml reads; raises on refusal."""
    from onelogin.saml2.response import OneLogin_Saml2_Response

    url = urlsplit(acs_url)
    request_data = {
        "https": "on" if url.scheme == "https" else "off",
        "http_host": url.netloc,
        "script_name": url.path,
        "get_data": {},
        "post_data": {"SAMLResponse": saml_response},
    }
    response = OneLogin_Saml2_Response(settings, saml_response)
    response.is_valid(request_data, request_id=request_id, raise_exceptions=True)
    response.get_attributes()  # raises on duplicated attribute names
    return str(response.get_nameid())
